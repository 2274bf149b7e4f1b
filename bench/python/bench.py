#!/usr/bin/env python3
"""CPython asyncio side of uasyncio-bench: the workloads of bench/README.md, written the way an asyncio
user would. Run by the Rust harness (bench/src/main.rs) as a child process; prints progress
on stderr and one flat JSON object (the same keys as the Rust children) on its last stdout line.

    python3 bench/python/bench.py [--quick] [--reps N] [--workloads a,b] [--rss]

Measurements are taken inside the coroutine (a fresh asyncio.run per repetition), so loop
creation and teardown are not charged to a workload. Sizes mirror Params in src/measure.rs.
"""

import asyncio
import json
import math
import resource
import sys
import threading
import time
import tracemalloc

MASK = (1 << 64) - 1


def splitmix64(x):
    """Same hash as measure::splitmix64, so every runtime sleeps the same spread."""
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


class Params:
    def __init__(self, argv):
        self.quick = "--quick" in argv
        if self.quick:
            self.reps = 1
            self.spawn_tasks = 100
            self.yield_tasks, self.yields_per_task = 10, 100
            self.pingpong_rounds = 1000
            self.timer_tasks, self.timer_max_ms = 100, 20
            self.wake_iters = 100
            self.lock_tasks, self.lock_total = 10, 1000
            self.queue_rounds = 1000
        else:
            self.reps = 5
            self.spawn_tasks = 10_000
            self.yield_tasks, self.yields_per_task = 100, 10_000
            self.pingpong_rounds = 100_000
            self.timer_tasks, self.timer_max_ms = 10_000, 1000
            self.wake_iters = 10_000
            self.lock_tasks, self.lock_total = 10, 100_000
            self.queue_rounds = 100_000
        self.wake_gap_s = 50e-6
        if "--reps" in argv:
            self.reps = int(argv[argv.index("--reps") + 1])
        self.workloads = None
        if "--workloads" in argv:
            self.workloads = argv[argv.index("--workloads") + 1].split(",")

    def runs(self, name):
        return self.workloads is None or name in self.workloads

    def timer_delay_ms(self, i):
        return splitmix64(0x5EED_0000 + i) % (self.timer_max_ms + 1)


def progress(what):
    print(f"[cpython] {what}", file=sys.stderr, flush=True)


def median_of(reps, make_coro):
    runs = sorted(asyncio.run(make_coro()) for _ in range(max(reps, 1)))
    return runs[len(runs) // 2]


def quantile(samples, q):
    if not samples:
        return math.nan
    samples = sorted(samples)
    return samples[round((len(samples) - 1) * q)]


def cpu_time_ns():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return int((ru.ru_utime + ru.ru_stime) * 1e9)


async def trivial():
    pass


async def spawn_alive(n):
    t0 = time.perf_counter_ns()
    tasks = [asyncio.create_task(trivial()) for _ in range(n)]
    for t in tasks:
        await t
    return time.perf_counter_ns() - t0


async def spawn_serial(n):
    t0 = time.perf_counter_ns()
    for _ in range(n):
        await asyncio.create_task(trivial())
    return time.perf_counter_ns() - t0


async def yields(tasks, per_task):
    async def yielder():
        for _ in range(per_task):
            await asyncio.sleep(0)

    t0 = time.perf_counter_ns()
    handles = [asyncio.create_task(yielder()) for _ in range(tasks)]
    for h in handles:
        await h
    return time.perf_counter_ns() - t0


async def ping_pong(rounds):
    ping, pong = asyncio.Event(), asyncio.Event()

    async def responder():
        for _ in range(rounds):
            await ping.wait()
            ping.clear()
            pong.set()

    t0 = time.perf_counter_ns()
    r = asyncio.create_task(responder())
    for _ in range(rounds):
        ping.set()
        await pong.wait()
        pong.clear()
    await r
    return time.perf_counter_ns() - t0


async def timers(p):
    async def sleeper(ms):
        start = time.perf_counter_ns()
        await asyncio.sleep(ms / 1000)
        return max(0, time.perf_counter_ns() - (start + ms * 1_000_000))

    cpu0 = cpu_time_ns()
    tasks = [asyncio.create_task(sleeper(p.timer_delay_ms(i))) for i in range(p.timer_tasks)]
    late = [await t for t in tasks]
    return cpu_time_ns() - cpu0, late


async def cross_thread_wake(p):
    loop = asyncio.get_running_loop()
    ev = asyncio.Event()
    state = {"stamp": 0, "acked": 0}

    def drive():
        for i in range(p.wake_iters):
            while True:
                time.sleep(p.wake_gap_s)
                if state["acked"] == i:
                    break
            state["stamp"] = time.perf_counter_ns()
            loop.call_soon_threadsafe(ev.set)

    th = threading.Thread(target=drive)
    th.start()
    lat = []
    for _ in range(p.wake_iters):
        await ev.wait()
        ev.clear()
        lat.append(time.perf_counter_ns() - state["stamp"])
        state["acked"] += 1
    await asyncio.to_thread(th.join)
    return lat


async def lock(tasks, total):
    lk = asyncio.Lock()
    per_task = total // tasks
    count = 0

    async def locker():
        nonlocal count
        for _ in range(per_task):
            async with lk:
                count += 1
                # Hold it across a switch, so the other tasks queue up behind it.
                await asyncio.sleep(0)

    t0 = time.perf_counter_ns()
    handles = [asyncio.create_task(locker()) for _ in range(tasks)]
    for h in handles:
        await h
    elapsed = time.perf_counter_ns() - t0
    assert count == per_task * tasks
    return elapsed


async def queue_round_trip(rounds):
    there, back = asyncio.Queue(1), asyncio.Queue(1)

    async def echo():
        for _ in range(rounds):
            await back.put(await there.get())

    t0 = time.perf_counter_ns()
    e = asyncio.create_task(echo())
    for i in range(rounds):
        await there.put(i)
        assert await back.get() == i
    await e
    return time.perf_counter_ns() - t0


async def task_bytes(n):
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tasks = [asyncio.create_task(trivial()) for _ in range(n)]
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    for t in tasks:
        await t
    return (after - before) / n


def vm_hwm_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return math.nan


def main(argv):
    p = Params(argv)
    m = {}
    if "--rss" in argv:
        asyncio.run(spawn_alive(p.spawn_tasks))
        m["rss_kib"] = vm_hwm_kib()
    else:
        n = p.spawn_tasks
        if p.runs("spawn"):
            progress("spawn")
            m["spawn_alive_ns"] = median_of(p.reps, lambda: spawn_alive(n)) / n
            m["spawn_serial_ns"] = median_of(p.reps, lambda: spawn_serial(n)) / n
        if p.runs("yield"):
            progress("yield")
            switches = p.yield_tasks * p.yields_per_task
            m["yield_ns"] = median_of(p.reps, lambda: yields(p.yield_tasks, p.yields_per_task)) / switches
        if p.runs("pingpong"):
            progress("ping-pong")
            m["pingpong_ns"] = median_of(p.reps, lambda: ping_pong(p.pingpong_rounds)) / p.pingpong_rounds
        if p.runs("timers"):
            progress("timers")
            cpu, late = asyncio.run(timers(p))
            m["timer_cpu_ns"] = cpu / p.timer_tasks
            m["timer_late_p50_us"] = quantile(late, 0.50) / 1000
            m["timer_late_p99_us"] = quantile(late, 0.99) / 1000
        if p.runs("xwake"):
            progress("cross-thread wake")
            lat = asyncio.run(cross_thread_wake(p))
            m["xwake_p50_us"] = quantile(lat, 0.50) / 1000
            m["xwake_p99_us"] = quantile(lat, 0.99) / 1000
        if p.runs("lock"):
            progress("lock")
            m["lock_ns"] = median_of(p.reps, lambda: lock(p.lock_tasks, p.lock_total)) / p.lock_total
        if p.runs("queue"):
            progress("queue round trip")
            m["queue_ns"] = median_of(p.reps, lambda: queue_round_trip(p.queue_rounds)) / p.queue_rounds
        if p.runs("memory"):
            progress("memory")
            m["task_bytes"] = asyncio.run(task_bytes(n))
    print(json.dumps({k: (v if isinstance(v, (int, float)) and math.isfinite(v) else None) for k, v in m.items()}))


if __name__ == "__main__":
    main(sys.argv[1:])
