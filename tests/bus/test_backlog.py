"""`backlog()` on every backend (memory, real Redis, real NATS): messages a consumer group has not acknowledged.

N published to a group whose handler is held -> backlog N (queued, undelivered or delivered-not-acked all
count); the handler released -> 0. What `roottrading_bus_backlog_messages{topic,group}` shows at scrape time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from roottrading import messages as m
from roottrading.bus.memory import MemoryBus
from roottrading.runtime.metrics import _backlog
from tests.bus.conftest import FAST_RETRY, delete_prefix, make_redis_bus
from tests.dispatcher.conftest import make_nats_bus

N = 12
TOPIC = "test.backlog"


@pytest.fixture(params=["memory", "redis", "nats"])
async def any_bus(request: pytest.FixtureRequest, unique: str) -> AsyncIterator[Any]:
    """A started bus of each backend on a private prefix (deleted afterwards)."""
    if request.param == "memory":
        b: Any = MemoryBus(retry=FAST_RETRY)
        await b.start()
        yield b
        await b.close()
        return
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        b = make_redis_bus(url, f"rt-backlog-{unique}")
        await b.start()
        try:
            yield b
        finally:
            await b.close()
            await delete_prefix(url, b.prefix)
        return
    url = request.getfixturevalue("nats_url")
    b = make_nats_bus(url, f"rtb{unique}")
    await b.start()
    try:
        yield b
    finally:
        await b.close()
        cleaner = make_nats_bus(url, b.prefix)
        await cleaner.start()
        await cleaner.delete_stream()
        await cleaner.close()


async def _until(what: Callable[[], Any], want: Any, timeout: float = 10.0) -> Any:
    """Poll an async reading until it equals `want` (or time out and return the last value)."""
    deadline, got = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        got = await what()
        if got == want:
            return got
        await asyncio.sleep(0.02)
    return got


async def test_backlog_counts_what_a_group_has_not_acknowledged(any_bus: Any) -> None:
    gate, seen = asyncio.Event(), []

    async def held(msg: m.Message) -> None:
        await gate.wait()
        seen.append(msg.payload.seq)

    sub = await any_bus.subscribe(TOPIC, "slow", held)
    for i in range(N):  # several keys: spread over the partition streams / subjects
        await any_bus.publish(TOPIC, m.Ping(seq=i), key=f"K{i % 5}")

    async def reading() -> int:
        return int((await any_bus.backlog()).get((TOPIC, "slow"), -1))

    assert await _until(reading, N) == N
    assert (await _backlog(any_bus))[(TOPIC, "slow")] == N  # what the /metrics collector reads
    gate.set()
    assert await _until(reading, 0) == 0
    assert sorted(seen) == list(range(N))
    await sub.stop()


async def test_a_group_joined_elsewhere_is_not_reported_here(any_bus: Any) -> None:
    """Per-service processes: a group is reported by the process that joined it, not by every publisher."""
    await any_bus.publish(TOPIC, m.Ping(seq=1), key="K")
    assert (TOPIC, "other") not in await any_bus.backlog()


async def test_redis_counts_the_entries_itself_when_xinfo_cannot_tell_the_lag(redis_url: str, unique: str) -> None:
    """After an XDEL mid-stream Redis reports `lag` as nil: the backlog is then counted past the group's last
    delivered id (here a group with no live consumer: nothing is pending, all is undelivered)."""
    from roottrading.bus.base import partition_of

    bus = make_redis_bus(redis_url, f"rt-backlog-{unique}")
    await bus.start()
    try:

        async def never(_: m.Message) -> None:
            raise AssertionError("no consumer is live")

        await (await bus.subscribe(TOPIC, "gone", never)).stop()  # the group stays in Redis, nobody reads it
        ids = [await bus.redis.xadd(bus.stream(TOPIC, partition_of("K", bus.partitions)), {"d": b"x"}) for _ in "abc"]
        await bus.redis.xdel(bus.stream(TOPIC, partition_of("K", bus.partitions)), ids[1])
        rows = await bus.redis.xinfo_groups(bus.stream(TOPIC, partition_of("K", bus.partitions)))
        assert [r["lag"] for r in rows] == [None]  # the case under test
        assert (await bus.backlog())[(TOPIC, "gone")] == 2
    finally:
        await bus.close()
        await delete_prefix(redis_url, bus.prefix)
