#!/usr/bin/env python3
"""The servers a cellular scenario talks to: TCP echo on :7000 and TLS 1.3 echo on :7443.

Both bind 0.0.0.0 (the PPP address exists only while a link is up) and echo bytes back as
they arrive. The TLS server uses the certificate the harness made (ECDSA P-256, CN/SAN
echo.test) and allows TLS 1.3 only, with the P-256 group available (embedded-tls needs it).
Prints "ready" once both listen. `--probe` instead connects to both (TLS verified against
the certificate as CA, hostname echo.test) and exits 0 if both echo.
"""

import argparse
import asyncio
import ssl
import sys


async def echo(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        writer.close()


def server_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(cert, key)
    return ctx


async def serve(args):
    plain = await asyncio.start_server(echo, "0.0.0.0", args.port)
    tls = await asyncio.start_server(echo, "0.0.0.0", args.tls_port, ssl=server_context(args.cert, args.key))
    print("ready", flush=True)
    async with plain, tls:
        await asyncio.sleep(args.max_runtime)


async def probe(args):
    msg = b"hello echo\n"
    r, w = await asyncio.open_connection(args.host, args.port)
    w.write(msg)
    assert await r.readexactly(len(msg)) == msg
    w.close()
    ctx = ssl.create_default_context(cafile=args.cert)
    r, w = await asyncio.open_connection(args.host, args.tls_port, ssl=ctx, server_hostname="echo.test")
    w.write(msg)
    assert await r.readexactly(len(msg)) == msg
    print(f"probe ok: tcp echo and {w.get_extra_info('ssl_object').version()} echo", flush=True)
    w.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cert", required=True)
    p.add_argument("--key")
    p.add_argument("--port", type=int, default=7000)
    p.add_argument("--tls-port", type=int, default=7443)
    p.add_argument("--host", default="10.64.0.1")
    p.add_argument("--max-runtime", type=float, default=3600)
    p.add_argument("--probe", action="store_true")
    args = p.parse_args()
    try:
        asyncio.run(asyncio.wait_for(probe(args), 10) if args.probe else serve(args))
    except KeyboardInterrupt:
        pass
    except Exception as e:  # a probe failure: say what failed
        print(f"echoservers: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
