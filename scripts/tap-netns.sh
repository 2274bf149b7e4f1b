# Sourced (not run) by scripts that put a uasyncio program on a Linux TAP: a private network
# namespace holding `tap0` with the peer's address 192.168.69.100/24 (the program inside
# opens tap0 and takes 192.168.69.1). Used by net-echo-sample.sh and soak.sh.
#   tapns_ok           true if we can (root and /dev/net/tun)
#   tapns_up NAME      make the namespace and the TAP; when the script exits, the processes
#                      whose ids are in TAPNS_PIDS are killed and the namespace removed
tapns_ok() {
    [ "$(id -u)" = 0 ] && [ -e /dev/net/tun ]
}

TAPNS_PIDS=
tapns_down() {
    local p
    for p in $TAPNS_PIDS; do kill "$p" 2>/dev/null || true; done
    ip netns del "$TAPNS" 2>/dev/null || true
}

tapns_up() {
    TAPNS=$1
    trap tapns_down EXIT
    ip netns add "$TAPNS"
    ip -n "$TAPNS" link set lo up
    ip -n "$TAPNS" tuntap add dev tap0 mode tap
    ip -n "$TAPNS" addr add 192.168.69.100/24 dev tap0
    ip -n "$TAPNS" link set tap0 up
}
