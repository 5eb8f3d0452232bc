"""Redis-only guarantees: a consumer SIGKILLed mid-stream, a Redis server killed -9 and restarted, closing
acks in-flight work, bounded streams, poison messages. Nothing lost, nothing applied twice, order per key kept."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from roottrading import messages as m
from roottrading.bus import create_bus
from roottrading.bus.base import RetryPolicy
from roottrading.bus.redis import RedisBus

from .conftest import delete_prefix, make_redis_bus
from .consumer_proc import make_handler

pytestmark = pytest.mark.redis
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def prefix(redis_url: str, unique: str) -> AsyncIterator[str]:
    p = f"rt-test-{unique}"
    yield p
    await delete_prefix(redis_url, p)


async def _wait_for(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def test_create_bus_builds_a_redis_bus(redis_url: str) -> None:
    bus = create_bus(redis_url, prefix="rt-test-x")
    assert isinstance(bus, RedisBus) and bus.prefix == "rt-test-x"
    await bus.start()
    assert (await bus.health())["status"] == "ok"
    await bus.close()


async def test_sigkilled_consumer_is_taken_over_nothing_lost_nothing_applied_twice(redis_url: str, prefix: str) -> None:
    topic, group, keys, per_key = "test.kill", "workers", [f"K{i}" for i in range(6)], 100
    n = len(keys) * per_key
    pub = make_redis_bus(redis_url, prefix, lease_ms=600)
    await pub.start()
    r = pub.redis
    await pub.redis.delete(f"{prefix}:seen")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("consumer_proc.py")), redis_url, prefix, topic, group, "600"],
        env=env,
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"subscribed"
        await pub.publish_many(topic, [(m.Ping(seq=i), k) for i in range(per_key) for k in keys])
        await _wait_for(lambda: _count(r, f"{prefix}:applied", n // 4), 20, "the child to apply a quarter")
        os.kill(child.pid, signal.SIGKILL)  # no ack, no lease release: a crash
        child.wait(5)
    finally:
        if child.poll() is None:
            child.kill()
    applied_by_child = int(await r.get(f"{prefix}:applied") or 0)
    assert applied_by_child < n, "killed too late to test a takeover"
    await pub.subscribe(topic, group, make_handler(pub, prefix, 0.0), consumer="survivor")
    await _wait_for(lambda: _count(r, f"{prefix}:applied", n), 20, "the survivor to finish the stream")
    assert await pub.drain(5)
    for k in keys:  # per-key order kept and each message applied exactly once
        assert [int(x) for x in await r.lrange(f"{prefix}:applied:{k}", 0, -1)] == list(range(per_key)), k
    assert int(await r.get(f"{prefix}:applied")) == n
    assert pub.reclaimed > 0  # the child's unacked entries were reclaimed (XCLAIM)
    assert int(await r.get(f"{prefix}:deliveries")) >= n  # redeliveries happened or not: both are fine
    await pub.close()


async def _count(r: aioredis.Redis, key: str, at_least: int) -> bool:
    return int(await r.get(key) or 0) >= at_least


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_redis(port: int, data: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--dir",
            str(data),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError("private redis-server did not start")


@pytest.fixture
def private_redis(tmp_path: Path, redis_url: str) -> Iterator[tuple[int, Path, list[subprocess.Popen[bytes]]]]:
    """A throw-away redis-server with an append-only file, so the test can kill -9 it (never the shared one)."""
    port = _free_port()
    procs = [_start_redis(port, tmp_path)]
    yield port, tmp_path, procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(5)


async def test_redis_killed_and_restarted_mid_stream_every_message_arrives(
    private_redis: tuple[int, Path, list[subprocess.Popen[bytes]]],
) -> None:
    port, data, procs = private_redis
    bus = make_redis_bus(f"redis://127.0.0.1:{port}/0", "rt-restart", lease_ms=400, publish_timeout_s=20)
    await bus.start()
    got: dict[str, tuple[str | None, int]] = {}
    order: dict[str | None, list[int]] = {}

    async def idempotent(msg: m.Message) -> None:
        if msg.id in got:
            return  # a duplicate (publish retried after a lost reply, or redelivery): ignore
        got[msg.id] = (msg.key, msg.payload.seq)
        order.setdefault(msg.key, []).append(msg.payload.seq)

    await bus.subscribe("test.restart", "g", idempotent)
    n, sent = 300, []

    async def producer() -> None:
        for i in range(n):
            sent.append(await bus.publish("test.restart", m.Ping(seq=i), key=f"K{i % 4}"))
            await asyncio.sleep(0.002)

    task = asyncio.create_task(producer())
    while len(sent) < n // 3:
        await asyncio.sleep(0.01)
    procs[0].send_signal(signal.SIGKILL)  # kill -9 mid-stream
    procs[0].wait(5)
    down_at = len(sent)
    await asyncio.sleep(0.5)  # publisher and consumer both retry while Redis is down
    assert len(sent) <= down_at + 1
    procs.append(await asyncio.to_thread(_start_redis, port, data))
    await asyncio.wait_for(task, 30)
    await _wait_for(lambda: _true(len(got) == n), 20, "every message after the restart")
    assert set(got) == set(sent)
    for k, seqs in order.items():
        assert seqs == sorted(seqs) and len(seqs) == n // 4, k
    assert bus.stats.errors.get("connection", 0) > 0  # the outage was real
    await bus.close()


async def _true(v: bool) -> bool:
    return v


async def test_close_acks_in_flight_and_hands_partitions_over_at_once(redis_url: str, prefix: str) -> None:
    a = make_redis_bus(redis_url, prefix, lease_ms=5_000, partitions=2)
    await a.start()
    started, done = asyncio.Event(), []

    async def slow(msg: m.Message) -> None:
        started.set()
        await asyncio.sleep(0.2)
        done.append(msg.payload.seq)

    await a.subscribe("test.handover", "g", slow)
    await a.publish("test.handover", m.Ping(seq=1), key="K")
    await asyncio.wait_for(started.wait(), 5)
    await a.close()
    assert done == [1]
    b = make_redis_bus(redis_url, prefix, lease_ms=5_000, partitions=2)
    await b.start()
    for p in range(2):
        assert (await b.redis.xpending(b.stream("test.handover", p), "g"))["pending"] == 0  # acked on close
    got: list[int] = []

    async def rec(msg: m.Message) -> None:
        got.append(msg.payload.seq)

    t0 = time.monotonic()
    await b.subscribe("test.handover", "g", rec)
    await b.publish("test.handover", m.Ping(seq=2), key="K")
    await _wait_for(lambda: _true(got == [2]), 3, "the next message")
    assert time.monotonic() - t0 < 2.0  # leases were released, not left to expire (5 s)
    await b.close()


async def test_streams_are_bounded_by_maxlen(redis_url: str, prefix: str) -> None:
    bus = make_redis_bus(redis_url, prefix, maxlen=200, partitions=1)
    await bus.start()
    await bus.publish_many("test.bound", [(m.Ping(seq=i), "K") for i in range(3000)])
    assert 200 <= await bus.redis.xlen(bus.stream("test.bound", 0)) < 400  # MAXLEN ~ trims whole nodes
    await bus.close()


async def test_poison_message_that_keeps_killing_consumers_is_dead_lettered(redis_url: str, prefix: str) -> None:
    bus = make_redis_bus(
        redis_url, prefix, partitions=1, claim_idle_ms=0, retry=RetryPolicy(max_attempts=3, backoff_s=0.001)
    )
    await bus.start()
    name = bus.stream("test.poison", 0)
    await bus.redis.xgroup_create(name, "g", id="0", mkstream=True)
    msg_id = await bus.publish("test.poison", m.Ping(seq=1))
    [[_, [(entry_id, _)]]] = await bus.redis.xreadgroup("g", "crashed-1", {name: ">"})
    for i in range(2, 4):  # two more consumers took it and died without acking
        await bus.redis.xclaim(name, "g", f"crashed-{i}", 0, [entry_id])
    calls: list[int] = []
    dead: list[m.DeadLetter] = []

    async def handler(msg: m.Message) -> None:
        calls.append(msg.attempt)

    async def dl(msg: m.Message) -> None:
        dead.append(msg.payload)

    await bus.subscribe("test.poison", "g", handler)
    await bus.subscribe(m.dead_letter_topic("test.poison"), "dl", dl)
    assert await bus.drain(5)
    assert calls == []  # 4th delivery > max_attempts: parked, not run again
    [d] = dead
    assert d.message_id == msg_id and d.attempts == 4 and "without ack" in d.error
    await bus.close()


async def test_consumer_recreates_its_group_when_redis_lost_the_streams(redis_url: str, prefix: str) -> None:
    bus = make_redis_bus(redis_url, prefix, partitions=2)
    await bus.start()
    got: list[int] = []

    async def rec(msg: m.Message) -> None:
        got.append(msg.payload.seq)

    await bus.subscribe("test.nogroup", "g", rec)
    await bus.redis.delete(*(bus.stream("test.nogroup", p) for p in range(2)))  # as after a restart w/o disk
    # the reader hits NOGROUP and recreates the groups
    await _wait_for(lambda: _true(bus.stats.errors.get("response", 0) >= 1), 5, "the reader to hit NOGROUP")
    await bus.publish("test.nogroup", m.Ping(seq=5), key="K")
    await _wait_for(lambda: _true(got == [5]), 5, "delivery after the group was recreated")
    assert bus.stats.errors.get("response", 0) >= 1
    await bus.close()


async def test_publish_raises_when_redis_stays_down_never_drops_silently() -> None:
    bus = RedisBus(f"redis://127.0.0.1:{_free_port()}/0", prefix="rt-test-down", publish_timeout_s=0.3)
    await bus.start()
    t0 = time.monotonic()
    with pytest.raises(RedisConnectionError):
        await bus.publish("test.down", m.Ping(seq=1))
    assert time.monotonic() - t0 >= 0.3  # retried until publish_timeout_s, then raised
    assert bus.stats.published == 0 and bus.stats.errors["connection"] >= 2
    assert (await bus.health())["status"] == "down"
    await bus.close()


async def test_entry_without_data_field_is_dead_lettered(redis_url: str, prefix: str) -> None:
    bus = make_redis_bus(redis_url, prefix, partitions=1)
    await bus.start()
    got, dead = [], []

    async def rec(msg: m.Message) -> None:
        got.append(msg.payload.seq)

    async def dl(msg: m.Message) -> None:
        dead.append(msg.payload)

    await bus.subscribe("test.nofield", "g", rec)
    await bus.subscribe(m.dead_letter_topic("test.nofield"), "dl", dl)
    await bus.redis.xadd(bus.stream("test.nofield", 0), {"other": "x"})  # written by some foreign tool
    await bus.publish("test.nofield", m.Ping(seq=3))
    assert await bus.drain(5)
    assert got == [3] and len(dead) == 1 and "no 'd' field" in dead[0].error
    await bus.close()


async def test_takeover_waits_for_fresh_pending_entries_instead_of_reordering(redis_url: str, prefix: str) -> None:
    bus = make_redis_bus(redis_url, prefix, partitions=1, claim_idle_ms=300)
    await bus.start()
    name = bus.stream("test.reorder", 0)
    await bus.redis.xgroup_create(name, "g", id="0", mkstream=True)
    for i in range(6):
        await bus.publish("test.reorder", m.Ping(seq=i), key="K")
    await bus.redis.xreadgroup("g", "ghost-a", {name: ">"}, count=3)  # seq 0..2
    await bus.redis.xreadgroup("g", "ghost-b", {name: ">"}, count=3)  # seq 3..5
    await asyncio.sleep(0.35)
    first3 = [row["message_id"] for row in await bus.redis.xpending_range(name, "g", "-", "+", 3)]
    await bus.redis.xclaim(name, "g", "ghost-a", 0, first3)  # 0..2 look busy again, 3..5 look abandoned
    got: list[int] = []

    async def rec(msg: m.Message) -> None:
        got.append(msg.payload.seq)

    t0 = time.monotonic()
    await bus.subscribe("test.reorder", "g", rec)
    await _wait_for(lambda: _true(len(got) == 6), 5, "all six")
    assert got == [0, 1, 2, 3, 4, 5]  # XAUTOCLAIM alone would have handled 3..5 first
    assert time.monotonic() - t0 >= 0.25  # it waited for 0..2 to become claimable
    await bus.close()
