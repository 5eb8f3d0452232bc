"""Issue 18: the Redis bus exposes which partitions this process holds (bus/ownership.py), runs the service's
acquire callbacks before reading a new partition and its release callbacks before handing one back, and stops
reporting a partition owned once its lease is past its deadline. Broadcast groups start at the newest entry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from roottrading import messages as m
from roottrading.bus.ownership import ownership_for
from roottrading.bus.redis import RedisBus
from roottrading.domain import OrderRequest, OrderType, Side

from .conftest import delete_prefix, make_redis_bus

pytestmark = pytest.mark.redis
TOPIC, GROUP = m.ORDER_REQUESTS, "trader"


@pytest.fixture
async def prefix(redis_url: str, unique: str) -> AsyncIterator[str]:
    p = f"rt-own-{unique}"
    yield p
    await delete_prefix(redis_url, p)


async def until(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def req(i: int, symbol: str) -> OrderRequest:
    return OrderRequest(
        id=f"r{i}", time=0, symbol=symbol, side=Side.BUY, type=OrderType.MARKET, quantity=None, strategy="s"
    )


class Recorder:
    def __init__(self, bus: RedisBus) -> None:
        self.own = ownership_for(bus, TOPIC, GROUP)
        self.events: list[tuple[str, frozenset[int], frozenset[int]]] = []  # (what, partitions, owned at the time)
        self.seen: list[tuple[int, bool]] = []  # (partition of a handled message, owned when handled)
        self.own.on_acquire(self.acquired)
        self.own.on_release(self.released)

    async def acquired(self, ps: set[int]) -> None:
        self.events.append(("acquire", frozenset(ps), frozenset(self.own.owned_partitions())))

    async def released(self, ps: set[int]) -> None:
        self.events.append(("release", frozenset(ps), frozenset(self.own.owned_partitions())))

    async def handler(self, msg: m.Message) -> None:
        self.seen.append((self.own.partition(msg.key or ""), self.own.owns(msg.key)))


async def test_two_members_split_the_partitions_and_a_dead_ones_come_back(redis_url: str, prefix: str) -> None:
    # a lease long enough that a loaded host's stalls between renewals never make owns() false while held
    a_bus, b_bus = make_redis_bus(redis_url, prefix, lease_ms=3000), make_redis_bus(redis_url, prefix, lease_ms=3000)
    await a_bus.start()
    await b_bus.start()
    a, b = Recorder(a_bus), Recorder(b_bus)
    try:
        await a_bus.subscribe(TOPIC, GROUP, a.handler)
        assert a.own.owned_partitions() == {0, 1, 2, 3}  # alone: every partition, acquired before reading
        assert all(what == "acquire" for what, _, _ in a.events)
        await b_bus.subscribe(TOPIC, GROUP, b.handler)
        await until(lambda: len(a.own.owned_partitions()) == 2 and len(b.own.owned_partitions()) == 2, 5, "split")
        assert a.own.owned_partitions().isdisjoint(b.own.owned_partitions())
        released = {p for what, ps, _ in a.events if what == "release" for p in ps}
        assert released == b.own.owned_partitions()
        # a release callback runs once the partition no longer counts as owned (stop acting first)
        assert all(not (ps & owned) for what, ps, owned in a.events if what == "release")

        for i in range(40):
            await a_bus.publish(TOPIC, req(i, f"SYM{i}"), key=f"SYM{i}")
        await until(lambda: len(a.seen) + len(b.seen) == 40, 5, "every message handled")
        assert all(owned for _, owned in a.seen + b.seen)  # each handled by the owner of its key's partition

        # b dies without releasing (its tasks stop, its leases are left to expire): a takes its partitions back
        for c in list(b_bus._consumers):
            c.stopping = True
            for t in (c.task, c.hb_task):
                assert t is not None
                t.cancel()
        await asyncio.sleep(a_bus.lease_ms / 1000)  # b's own view expires with its lease, on its own clock
        assert not b.own.owned_partitions()
        await until(lambda: a.own.owned_partitions() == {0, 1, 2, 3}, 10, "takeover")
    finally:
        await a_bus.close()
        await b_bus.close()


async def test_a_broadcast_group_starts_after_the_newest_entry(redis_url: str, prefix: str) -> None:
    bus = make_redis_bus(redis_url, prefix)
    await bus.start()
    got: list[str] = []

    async def handler(msg: m.Message) -> None:
        got.append(msg.id)

    try:
        await bus.publish(TOPIC, req(1, "BTCUSDT"), key="BTCUSDT", msg_id="old")
        await bus.subscribe(TOPIC, "trader@one", handler, from_latest=True)
        await bus.subscribe(TOPIC, "trader@two", handler)  # a work-sharing group starts from the oldest
        await bus.publish(TOPIC, req(2, "BTCUSDT"), key="BTCUSDT", msg_id="new")
        await until(lambda: len(got) == 3, 5, "deliveries")
        assert sorted(got) == ["new", "new", "old"]
    finally:
        await bus.close()
