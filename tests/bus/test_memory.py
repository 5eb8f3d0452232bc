"""Memory-only behaviour: the synchronous deterministic mode of backtests, and key ownership when consumers
join or leave (order per key must survive it)."""

from __future__ import annotations

import asyncio

from roottrading import messages as m
from roottrading.bus import create_bus
from roottrading.bus.base import RetryPolicy, fast_message_id
from roottrading.bus.memory import MemoryBus


async def test_synchronous_mode_delivers_inside_publish_depth_first() -> None:
    bus = create_bus("memory://sync")
    assert isinstance(bus, MemoryBus) and bus.synchronous
    trace: list[str] = []

    async def first(msg: m.Message) -> None:
        trace.append(f"a{msg.payload.seq}")
        if msg.payload.seq == 0:
            await bus.publish("test.b", m.Ping(seq=1))  # a handler publishing: handled before we return
        trace.append(f"a{msg.payload.seq}-end")

    async def second(msg: m.Message) -> None:
        trace.append(f"b{msg.payload.seq}")

    await bus.subscribe("test.a", "g", first)
    await bus.subscribe("test.b", "g", second)
    await bus.publish("test.a", m.Ping(seq=0))
    trace.append("returned")
    assert trace == ["a0", "b1", "a0-end", "returned"]
    assert await bus.drain(0.01)


async def test_synchronous_mode_retries_and_dead_letters_without_sleeping() -> None:
    bus = MemoryBus(synchronous=True, retry=RetryPolicy(max_attempts=2, backoff_s=0.0))
    calls: list[int] = []

    async def boom(msg: m.Message) -> None:
        calls.append(msg.attempt)
        raise KeyError("missing")

    await bus.subscribe("test.s", "g", boom)
    await bus.publish("test.s", m.Ping(seq=1))
    assert calls == [1, 2]
    [dl] = bus.retained_messages(m.dead_letter_topic("test.s"))
    assert dl.payload.error == "KeyError: 'missing'" and dl.payload.attempts == 2


async def test_consumer_leaving_hands_its_keys_over_in_order() -> None:
    bus = MemoryBus()
    log: list[tuple[str, str | None, int]] = []

    def rec(name: str, delay: float):  # type: ignore[no-untyped-def]
        async def h(msg: m.Message) -> None:
            await asyncio.sleep(delay)
            log.append((name, msg.key, msg.payload.seq))

        return h

    sub_a = await bus.subscribe("test.move", "g", rec("a", 0.001))
    await bus.subscribe("test.move", "g", rec("b", 0.0))
    for i in range(20):
        await bus.publish("test.move", m.Ping(seq=i), key=f"K{i % 4}")
    await sub_a.stop()  # a finishes its queue, then its keys move to b
    for i in range(20, 40):
        await bus.publish("test.move", m.Ping(seq=i), key=f"K{i % 4}")
    assert await bus.drain(5)
    assert {name for name, _, seq in log if seq >= 20} == {"b"}
    for k in ("K0", "K1", "K2", "K3"):
        seqs = [seq for _, key, seq in log if key == k]
        assert seqs == sorted(seqs) and len(seqs) == 10
    await bus.close()


def test_fast_message_ids_are_unique_and_short() -> None:
    ids = [fast_message_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 28 for i in ids[:10])


async def test_close_survives_a_handler_that_subscribes_and_publishes_while_finishing() -> None:
    """Regression: close() iterated the live topic dict while an in-flight handler created a new topic
    ('dictionary changed size during iteration', seen under SIGTERM of the demo)."""
    import asyncio

    from roottrading.bus.memory import MemoryBus
    from roottrading.messages import Ping

    bus = MemoryBus()
    await bus.start()
    started = asyncio.Event()

    async def slow(msg):  # type: ignore[no-untyped-def]
        started.set()
        await asyncio.sleep(0.05)
        for i in range(20):  # new topics and groups appear while close() is walking them
            await bus.subscribe(f"test.late{i}", "g", slow_noop)
        await bus.publish_raw("test.other", b"x", None)

    async def slow_noop(msg):  # type: ignore[no-untyped-def]
        return None

    await bus.subscribe("test.a", "g", slow)
    await bus.publish("test.a", Ping(seq=1))
    await started.wait()
    await bus.close()  # must not raise


def test_dead_letter_record_is_the_same_contract_for_every_backend() -> None:
    """bus.base.dead_letter_for builds what all three backends park: raw bytes kept, error bounded, and a
    failing dead letter is never dead-lettered again (no loops)."""
    from roottrading import messages as m
    from roottrading.bus.base import BusStats, dead_letter_for

    stats = BusStats()
    letter = dead_letter_for(stats, "signals", "coordinator", "id-1", b'{"broken"', "boom" * 1000, 3)
    assert letter is not None
    topic, raw, dl_id = letter
    msg = m.decode(raw)
    assert topic == "deadletter.signals" and msg.id == dl_id and msg.key == "coordinator"
    dl = msg.payload
    assert (dl.topic, dl.group, dl.message_id, dl.attempts, dl.raw) == (
        "signals",
        "coordinator",
        "id-1",
        3,
        '{"broken"',
    )
    assert len(dl.error) == 2000
    assert dead_letter_for(stats, "deadletter.signals", "g", "id-2", raw, "again", 1) is None
    assert stats.dead_lettered == 2
