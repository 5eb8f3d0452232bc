"""Redis lease balancing across a group's topics: two processes (two buses) subscribed to one topic per symbol
(each keyed by its symbol, so each topic's entries live in ONE partition stream) split the symbols between
them, instead of one process keeping every busy partition (benchmarks/split.py, analyzer 1 vs 2 instances)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from roottrading import messages as m
from roottrading.bus.base import partition_of
from roottrading.bus.redis import RedisBus

from .conftest import delete_prefix, make_redis_bus

pytestmark = pytest.mark.redis
# crc32 of every one of these keys is 0 modulo 4: each topic's entries are in partition 0, the partition a
# process keeps when it gives the upper ones to a newcomer. The worst case for per-topic balancing.
KEYS = [f"S{i:03d}USDT" for i in range(8)]


@pytest.fixture
async def prefix(redis_url: str, unique: str) -> AsyncIterator[str]:
    p = f"rt-test-{unique}"
    yield p
    await delete_prefix(redis_url, p)


def topic(key: str) -> str:
    return f"test.candles.{key}"


async def wait_until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def busy_held(bus: RedisBus) -> int:
    """Partitions holding entries that this bus's consumers hold (each key's partition is 0 here)."""
    return sum(1 for c in bus._consumers if 0 in c.held)


async def subscribe_all(bus: RedisBus, seen: dict[str, list[int]], owner: dict[str, str], who: str) -> None:
    """Subscribe `bus` to every key's topic; `owner[key]` names the bus that handled its latest message."""
    for key in KEYS:

        async def handler(msg: m.Message, key: str = key) -> None:
            seen.setdefault(key, []).append(msg.payload.seq)
            owner[key] = who

        await bus.subscribe(topic(key), "analyzer", handler)


async def test_two_processes_split_single_key_topics_and_lose_nothing(redis_url: str, prefix: str) -> None:
    assert {partition_of(k, 4) for k in KEYS} == {0}
    a, b = make_redis_bus(redis_url, prefix, partitions=4), make_redis_bus(redis_url, prefix, partitions=4)
    seen: dict[str, list[int]] = {}
    owner: dict[str, str] = {}

    async def publish(seq: int) -> None:
        for key in KEYS:
            await a.publish(topic(key), m.Ping(seq=seq), key=key)

    await a.start()
    await b.start()
    try:
        await publish(0)  # the streams hold entries: these partitions are the load
        await subscribe_all(a, seen, owner, "a")
        await wait_until(lambda: all(seen.get(k) == [0] for k in KEYS), 10, "a alone reading every topic")
        assert busy_held(a) == len(KEYS)
        await subscribe_all(b, seen, owner, "b")
        await wait_until(lambda: busy_held(a) == busy_held(b) == len(KEYS) // 2, 10, "the busy partitions split 4/4")
        owner.clear()
        for seq in range(1, 21):
            await publish(seq)
        await wait_until(lambda: all(len(seen.get(k, [])) == 21 for k in KEYS), 15, "every message handled")
        for k in KEYS:
            assert seen[k] == list(range(21))  # nothing lost, nothing twice, in order per key
        assert sorted(owner.values()).count("b") == len(KEYS) // 2  # b really handled half of the symbols
        # a process leaving hands its share back: the survivor reads every topic again
        await b.close()
        await wait_until(lambda: busy_held(a) == len(KEYS), 10, "a taking every busy partition back")
        await publish(21)
        await wait_until(lambda: all(seen[k][-1] == 21 for k in KEYS), 10, "the survivor reading everything")
    finally:
        await a.close()
        await b.close()


async def test_two_consumers_of_one_topic_in_one_bus_still_share_it(redis_url: str, prefix: str) -> None:
    """Several consumers of one topic in one bus balance within the topic (the group share does not apply)."""
    bus = make_redis_bus(redis_url, prefix, partitions=4)
    await bus.start()
    keys = ["K0", "K1", "K2", "K3", "K4", "K5", "K6", "K7"]
    try:
        for k in keys:
            await bus.publish("test.shared", m.Ping(seq=0), key=k)
        got: list[str] = []

        async def rec(msg: m.Message) -> None:
            got.append(msg.key or "")

        await bus.subscribe("test.shared", "g", rec)
        await bus.subscribe("test.shared", "g", rec)
        first, second = bus._consumers
        await wait_until(lambda: len(first.held) == len(second.held) == 2, 10, "2 partitions each")
        await wait_until(lambda: sorted(got) == keys, 10, "every message once")
    finally:
        await bus.close()


async def test_members_with_different_topic_sets_leave_no_busy_partition_unread(redis_url: str, prefix: str) -> None:
    """a reads every key's topic, b only the first: their shares differ, yet every topic keeps being read and the
    shared topic goes to b (a is over its share, b under)."""
    a, b = make_redis_bus(redis_url, prefix, partitions=4), make_redis_bus(redis_url, prefix, partitions=4)
    seen: dict[str, list[int]] = {}
    owner: dict[str, str] = {}
    await a.start()
    await b.start()
    try:
        for key in KEYS:
            await a.publish(topic(key), m.Ping(seq=0), key=key)
        await subscribe_all(a, seen, owner, "a")
        await wait_until(lambda: all(seen.get(k) == [0] for k in KEYS), 10, "a reading every topic")

        async def only_first(msg: m.Message) -> None:
            seen.setdefault(KEYS[0], []).append(msg.payload.seq)
            owner[KEYS[0]] = "b"

        await b.subscribe(topic(KEYS[0]), "analyzer", only_first)
        first = b._consumers[0]
        await wait_until(lambda: 0 in first.held, 10, "b taking the shared topic's busy partition")
        for seq in range(1, 6):
            for key in KEYS:
                await a.publish(topic(key), m.Ping(seq=seq), key=key)
        await wait_until(lambda: all(len(seen.get(k, [])) == 6 for k in KEYS), 15, "every message handled")
        assert all(seen[k] == list(range(6)) for k in KEYS)
        assert owner[KEYS[0]] == "b" and all(owner[k] == "a" for k in KEYS[1:])
    finally:
        await a.close()
        await b.close()
