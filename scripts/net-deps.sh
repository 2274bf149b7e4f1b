#!/usr/bin/env bash
# Install what the network tests need (Debian): iproute2 for namespaces and TAP devices,
# dnsmasq-base for DNS/DHCP peers, openssl for the TLS peer, curl and python3 for clients.
# Idempotent; quiet when everything is already there.
set -euo pipefail
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "net-deps: missing ${need[*]} and not root; network tests will skip" >&2
        exit 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -o DPkg::Lock::Timeout=120 >/dev/null
    apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=120 "${need[@]}" >/dev/null
fi
