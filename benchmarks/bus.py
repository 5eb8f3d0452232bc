"""Bus benchmark: throughput and publish->handler latency of the memory and Redis Streams backends.

Each number is printed next to a baseline measured in the same run, doing the minimum any bus must do:
  memory: encode -> asyncio.Queue put/get -> decode (no retries, groups, acks);
  redis:  encode -> raw redis-py XADD (pipelined) -> XREADGROUP (COUNT batches) -> decode -> XACK.
Throughput = publish a batch of n, then wait until the handler saw all n. Latency = publish one, wait for its
handler to run, repeat (so no queueing inflates it). Each is run --repeat times, alternating with its
baseline, and the best run of each (highest throughput, lowest p99) is compared: the host is shared and noisy.

    .venv/bin/python benchmarks/bus.py [--n 100000] [--latency-n 5000] [--backend memory|redis|all]
                                       [--redis redis://127.0.0.1:6379/15]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from roottrading import messages as m
from roottrading.bus.base import fast_message_id
from roottrading.bus.memory import MemoryBus
from roottrading.bus.redis import RedisBus

TOPIC = "bench.bus"
KEYS = [f"SYM{i}" for i in range(16)]


def pct(samples_ns: list[int], q: float) -> float:
    """Percentile in microseconds."""
    s = sorted(samples_ns)
    return s[min(len(s) - 1, int(q * len(s)))] / 1000


def report(name: str, bus: tuple[float, float, list[int]], base: tuple[float, float, list[int]]) -> None:
    (rate, cpu, lat), (brate, bcpu, blat) = bus, base
    print(
        f"{name:7s} throughput {rate:>10,.0f} msg/s   baseline {brate:>10,.0f} msg/s   bus/baseline {rate / brate:5.2f}"
    )
    print(
        f"{name:7s} per CPU-s  {cpu:>10,.0f} msg/s   baseline {bcpu:>10,.0f} msg/s   "
        f"bus/baseline {cpu / bcpu:5.2f}   (this process's CPU time only; stable on a busy host)"
    )
    print(
        f"{name:7s} latency p50 {pct(lat, 0.5):8.1f} us  p99 {pct(lat, 0.99):8.1f} us   "
        f"baseline p50 {pct(blat, 0.5):8.1f} us  p99 {pct(blat, 0.99):8.1f} us   "
        f"p99 ratio {pct(lat, 0.99) / max(pct(blat, 0.99), 1e-9):5.2f}"
    )


class Counter:
    """Handler: counts messages, records latency from the payload's send time, wakes a waiter at `target`."""

    def __init__(self) -> None:
        self.count, self.target = 0, 0
        self.done: asyncio.Future[None] | None = None
        self.lat: list[int] = []

    def expect(self, target: int) -> asyncio.Future[None]:
        self.target = target
        self.done = asyncio.get_running_loop().create_future()
        return self.done

    async def __call__(self, msg: m.Message) -> None:
        sent = msg.payload.sent_ns
        if sent:
            self.lat.append(time.perf_counter_ns() - sent)
        self.count += 1
        if self.count >= self.target and self.done is not None and not self.done.done():
            self.done.set_result(None)


async def latency_loop(n: int, publish: Callable[[int], Awaitable[object]], counter: Counter) -> list[int]:
    counter.lat.clear()
    for i in range(n):
        fut = counter.expect(counter.count + 1)
        await publish(i)
        await fut
    return list(counter.lat)


# --- memory ---------------------------------------------------------------------------------------------
async def bench_memory(n: int, lat_n: int) -> tuple[float, float, list[int]]:
    bus = MemoryBus()
    await bus.start()
    c = Counter()
    await bus.subscribe(TOPIC, "g", c)
    ping = m.Ping(seq=0)
    t0, c0 = time.perf_counter(), time.process_time()
    fut = c.expect(n)
    for i in range(n):
        await bus.publish(TOPIC, ping, key=KEYS[i & 15])
        await asyncio.sleep(0) if i & 1023 == 0 else None  # same pacing as the baseline
    await fut
    rate, cpu_rate = n / (time.perf_counter() - t0), n / max(time.process_time() - c0, 1e-9)

    async def pub(i: int) -> None:
        await bus.publish(TOPIC, m.Ping(seq=i, sent_ns=time.perf_counter_ns()), key=KEYS[i & 15])

    c.count = 0
    lat = await latency_loop(lat_n, pub, c)
    await bus.close()
    return rate, cpu_rate, lat


async def baseline_queue(n: int, lat_n: int) -> tuple[float, float, list[int]]:
    q: asyncio.Queue[bytes] = asyncio.Queue()
    c = Counter()

    async def consume() -> None:
        while True:
            await c(m.decode(await q.get()))

    task = asyncio.create_task(consume())
    ping = m.Ping(seq=0)
    t0, c0 = time.perf_counter(), time.process_time()
    fut = c.expect(n)
    for i in range(n):
        q.put_nowait(m.encode(TOPIC, ping, key=KEYS[i & 15], msg_id=fast_message_id(), ts=1))
        await asyncio.sleep(0) if i & 1023 == 0 else None
    await fut
    rate, cpu_rate = n / (time.perf_counter() - t0), n / max(time.process_time() - c0, 1e-9)

    async def pub(i: int) -> None:
        q.put_nowait(
            m.encode(
                TOPIC, m.Ping(seq=i, sent_ns=time.perf_counter_ns()), key=KEYS[i & 15], msg_id=fast_message_id(), ts=1
            )
        )

    c.count = 0
    lat = await latency_loop(lat_n, pub, c)
    task.cancel()
    return rate, cpu_rate, lat


# --- redis ----------------------------------------------------------------------------------------------
async def bench_redis(url: str, n: int, lat_n: int) -> tuple[float, float, list[int]]:
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    bus = RedisBus(url, prefix=prefix, partitions=4, maxlen=max(100_000, n * 2), block_ms=100)
    await bus.start()
    c = Counter()
    await bus.subscribe(TOPIC, "g", c)
    ping = m.Ping(seq=0)
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        fut = c.expect(n)
        await bus.publish_many(TOPIC, [(ping, KEYS[i & 15]) for i in range(n)])
        t_pub = time.perf_counter() - t0
        await fut
        rate, cpu_rate = n / (time.perf_counter() - t0), n / max(time.process_time() - c0, 1e-9)

        async def pub(i: int) -> None:
            await bus.publish(TOPIC, m.Ping(seq=i, sent_ns=time.perf_counter_ns()), key=KEYS[i & 15])

        c.count = 0
        lat = await latency_loop(lat_n, pub, c)
        await bus.close()
        print(f"  redis publish_many alone: {n / t_pub:,.0f} msg/s")
        return rate, cpu_rate, lat
    finally:
        r = aioredis.Redis.from_url(url)
        keys = [k async for k in r.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await r.delete(*keys)
        await r.aclose()


async def baseline_redis(url: str, prefix: str, n: int, lat_n: int) -> tuple[float, float, list[int]]:
    r = aioredis.Redis.from_url(url)
    reader = aioredis.Redis.from_url(url)
    name = f"{prefix}:raw"
    await r.xgroup_create(name, "g", id="0", mkstream=True)
    c = Counter()
    stop = False

    async def consume() -> None:
        while not stop:
            resp = await reader.xreadgroup("g", "c", {name: ">"}, count=1000, block=100)
            for _, entries in resp or ():
                for _eid, fields in entries:
                    await c(m.decode(fields[b"d"]))
                await reader.xack(name, "g", *[e[0] for e in entries])

    task = asyncio.create_task(consume())
    ping = m.Ping(seq=0)
    t0, c0 = time.perf_counter(), time.process_time()
    fut = c.expect(n)
    for i in range(0, n, 1000):
        pipe = r.pipeline(transaction=False)
        for j in range(i, min(n, i + 1000)):
            raw = m.encode(TOPIC, ping, key=KEYS[j & 15], msg_id=fast_message_id(), ts=1)
            pipe.xadd(name, {b"d": raw}, maxlen=n * 2, approximate=True)
        await pipe.execute()
    await fut
    rate, cpu_rate = n / (time.perf_counter() - t0), n / max(time.process_time() - c0, 1e-9)

    async def pub(i: int) -> None:
        raw = m.encode(
            TOPIC, m.Ping(seq=i, sent_ns=time.perf_counter_ns()), key=KEYS[i & 15], msg_id=fast_message_id(), ts=1
        )
        await r.xadd(name, {b"d": raw}, maxlen=n * 2, approximate=True)

    c.count = 0
    lat = await latency_loop(lat_n, pub, c)
    stop = True
    await task
    await r.delete(name)
    await r.aclose()
    await reader.aclose()
    return rate, cpu_rate, lat


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="messages for the throughput runs")
    ap.add_argument("--latency-n", type=int, default=5_000, help="round trips for the latency runs")
    ap.add_argument("--backend", choices=("memory", "redis", "all"), default="all")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each; best of them is reported (noisy host)")
    a = ap.parse_args()
    print(
        f"n={a.n} latency_n={a.latency_n}  (targets: memory >= 200k msg/s p99 < 100 us; "
        f"redis >= 20k msg/s p99 < 2000 us)"
    )
    runs = {"memory": (bench_memory, baseline_queue), "redis": (bench_redis, baseline_redis)}
    for name, (bus_run, base_run) in runs.items():
        if a.backend not in (name, "all"):
            continue
        best: dict[str, tuple[float, float, list[int]]] = {}
        for i in range(a.repeat):  # alternate bus and baseline so both see the same machine noise
            for kind, run in (("bus", bus_run), ("base", base_run)):
                args = (a.n, a.latency_n) if name == "memory" else (a.redis, a.n, a.latency_n)
                if kind == "base" and name == "redis":
                    args = (a.redis, f"bench-base-{uuid.uuid4().hex[:8]}", a.n, a.latency_n)
                rate, cpu, lat = await run(*args)  # type: ignore[operator]
                print(
                    f"  run {i + 1} {name} {kind:4s}: {rate:>10,.0f} msg/s ({cpu:>10,.0f} per CPU-s)  "
                    f"p50 {pct(lat, 0.5):7.1f} us  p99 {pct(lat, 0.99):8.1f} us"
                )
                old = best.get(kind)
                best[kind] = (
                    max(rate, old[0]) if old else rate,
                    max(cpu, old[1]) if old else cpu,
                    lat if old is None or pct(lat, 0.99) < pct(old[2], 0.99) else old[2],
                )
        report(name, best["bus"], best["base"])


if __name__ == "__main__":
    asyncio.run(main())
