#!/usr/bin/env python3
"""Linux peer of the TAP benchmark: echo throughput and connection rate against the echo
server at 192.168.69.1:7000 (ours or embassy-net's). Prints one JSON line.

usage: peer.py MIB SECONDS   -- MiB to echo over one connection; seconds of connect/close
"""
import asyncio, json, os, sys, time

HOST, PORT = "192.168.69.1", 7000


async def connect():
    end = time.monotonic() + 10
    while True:
        try:
            return await asyncio.open_connection(HOST, PORT)
        except OSError:
            if time.monotonic() > end:
                raise
            await asyncio.sleep(0.05)


async def throughput(mib):
    r, w = await connect()
    block = os.urandom(1 << 20)
    total = mib << 20
    t0 = time.perf_counter()

    async def send():
        for _ in range(mib):
            w.write(block)
            await w.drain()

    async def recv():
        n = 0
        while n < total:
            b = await r.read(1 << 20)
            if not b:
                raise SystemExit("server closed early")
            n += len(b)

    await asyncio.gather(send(), recv())
    dt = time.perf_counter() - t0
    w.close()
    await w.wait_closed()
    return total / dt / 1e6


async def conn_rate(seconds):
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        r, w = await connect()
        w.write(b"x")
        await w.drain()
        assert await r.readexactly(1) == b"x"
        w.close()
        await w.wait_closed()
        n += 1
    return n / (time.perf_counter() - t0)


async def main():
    mib, secs = int(sys.argv[1]), float(sys.argv[2])
    await connect()  # warm up ARP
    mbps = await asyncio.wait_for(throughput(mib), 120)
    rate = await asyncio.wait_for(conn_rate(secs), secs + 30)
    print(json.dumps({"echo_MBps_each_way": round(mbps, 1), "connections_per_s": round(rate, 1)}))


asyncio.run(main())
