"""ONE contract suite, run against every backend (memory://, redis://) through the `bus` fixture."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest

from roottrading import messages as m
from roottrading.domain import Balance, Candle, Fill, Order, OrderRequest, Signal, Tick, TradeCycle
from roottrading.domain.enums import CycleStatus, OrderStatus, OrderType, Side, SignalStrength

T0 = 1_700_000_000_000

SAMPLES: list[tuple[str, Any]] = [
    (
        m.candles_topic("BTCUSDT"),
        Candle(
            symbol="BTCUSDT",
            interval="1m",
            open_time=T0,
            close_time=T0 + 59_999,
            open=1.5,
            high=2.25,
            low=1.0,
            close=2.0,
            volume=10.0,
            trades=3,
        ),
    ),
    (m.ticks_topic("ETHUSDT"), Tick(symbol="ETHUSDT", time=T0, price=2000.5, quantity=0.1, bid=2000.0, ask=2001.0)),
    (
        m.SIGNALS,
        Signal(
            id="s1",
            time=T0,
            symbol="BTCUSDT",
            strategy="ema_cross",
            side=Side.BUY,
            strength=SignalStrength.STRONG,
            price=42000.0,
            meta={"fast": 12, "note": "x"},
        ),
    ),
    (
        m.ORDER_REQUESTS,
        OrderRequest(
            id="r1",
            time=T0,
            symbol="BTCUSDT",
            side=Side.SELL,
            type=OrderType.LIMIT,
            quantity=Decimal("0.00100000"),
            price=Decimal("42000.01"),
        ),
    ),
    (
        m.ORDER_UPDATES,
        m.OrderUpdate(
            event="NEW",
            time=T0,
            order=Order(
                client_order_id="c1",
                symbol="BTCUSDT",
                side=Side.BUY,
                type=OrderType.MARKET,
                quantity=Decimal("0.5"),
                status=OrderStatus.NEW,
                executed_quantity=Decimal("0.1"),
                cumulative_quote=Decimal("4200.00"),
            ),
        ),
    ),
    (
        m.TRADE_EXECUTIONS,
        Fill(
            trade_id="t1",
            order_id="o1",
            client_order_id="c1",
            symbol="BTCUSDT",
            side=Side.BUY,
            price=Decimal("42000.10"),
            quantity=Decimal("0.001"),
            quote_quantity=Decimal("42.0001"),
            commission=Decimal("0.000001"),
            commission_asset="BTC",
            time=T0,
        ),
    ),
    (
        m.CYCLE_UPDATES,
        TradeCycle(
            id="cy1",
            symbol="BTCUSDT",
            strategy="rsi",
            side=Side.BUY,
            status=CycleStatus.ACTIVE,
            created_at=T0,
            updated_at=T0,
            entry_price=Decimal("100.5"),
            quantity=Decimal("2"),
        ),
    ),
    (
        m.PORTFOLIO_BALANCES,
        m.BalancesUpdate(
            time=T0,
            balances=[Balance(asset="USDT", free=Decimal("100.25"), locked=Decimal("0"))],
            total_value=Decimal("100.25"),
        ),
    ),
    (m.RISK_EVENTS, m.RiskEvent(time=T0, rule="max_drawdown", action="pause", message="drawdown 12%")),
    (m.logs_topic("error"), m.LogRecord(time=T0, level="error", service="trader", event="boom", context={"a": 1})),
    (m.SYSTEM_HEALTH, m.HealthReport(time=T0, status="ok", components={"bus": {"status": "ok"}})),
    ("test.ping", m.Ping(seq=7, note="é")),
]


class Recorder:
    """A handler that records what it received, per key, and can be told to be slow."""

    def __init__(self, delay: float = 0.0) -> None:
        self.msgs: list[m.Message] = []
        self.delay = delay

    async def __call__(self, msg: m.Message) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.msgs.append(msg)

    def seqs_by_key(self) -> dict[str | None, list[int]]:
        out: dict[str | None, list[int]] = defaultdict(list)
        for msg in self.msgs:
            out[msg.key].append(msg.payload.seq)
        return out


async def test_round_trip_of_every_topic_payload(bus: Any) -> None:
    recs = {}
    for topic, _ in SAMPLES:
        recs[topic] = Recorder()
        await bus.subscribe(topic, "g", recs[topic])
    ids = {topic: await bus.publish(topic, payload, key="BTCUSDT", ts=T0) for topic, payload in SAMPLES}
    assert await bus.drain(10)
    for topic, payload in SAMPLES:
        [got] = recs[topic].msgs
        assert got.payload == payload and type(got.payload) is type(payload)
        assert (got.id, got.topic, got.key, got.ts, got.attempt) == (ids[topic], topic, "BTCUSDT", T0, 1)


async def test_per_key_order_with_concurrent_keys_and_consumers(bus: Any) -> None:
    rec = Recorder(delay=0.0)
    await bus.subscribe("test.order", "g", rec)
    await bus.subscribe("test.order", "g", rec)
    keys = [f"SYM{i}" for i in range(8)]
    n = 40
    await asyncio.gather(*(_publish_seq(bus, "test.order", k, n) for k in keys))
    assert await bus.drain(15)
    by_key = rec.seqs_by_key()
    assert set(by_key) == set(keys)
    for k in keys:
        assert by_key[k] == list(range(n)), k


async def _publish_seq(bus: Any, topic: str, key: str, n: int) -> None:
    for i in range(n):
        await bus.publish(topic, m.Ping(seq=i), key=key)


async def test_every_group_receives_every_message(bus: Any) -> None:
    recs = {g: Recorder() for g in ("analyzer", "logger", "pnl")}
    for g, rec in recs.items():
        await bus.subscribe("test.groups", g, rec)
    for i in range(30):
        await bus.publish("test.groups", m.Ping(seq=i), key=f"K{i % 3}")
    assert await bus.drain(10)
    for rec in recs.values():
        assert sorted(msg.payload.seq for msg in rec.msgs) == list(range(30))


async def _balanced(bus: Any, timeout: float = 5.0) -> None:
    """Wait until every member of every group holds work (Redis hands partitions over asynchronously)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        consumers = (await bus.health()).get("consumers")
        if consumers is None or all(consumers.values()):
            return
        assert asyncio.get_running_loop().time() < deadline, f"partitions never balanced: {consumers}"
        await asyncio.sleep(0.01)


async def test_competing_consumers_share_without_duplicates(bus: Any) -> None:
    timeline: list[m.Message] = []
    a, b = Recorder(delay=0.001), Recorder(delay=0.001)

    async def rec_a(msg: m.Message) -> None:
        await a(msg)
        timeline.append(msg)

    async def rec_b(msg: m.Message) -> None:
        await b(msg)
        timeline.append(msg)

    await bus.subscribe("test.share", "workers", rec_a)
    await bus.subscribe("test.share", "workers", rec_b)
    await _balanced(bus)
    n = 200
    for i in range(n):
        await bus.publish("test.share", m.Ping(seq=i), key=f"K{i % 16}")
    assert await bus.drain(15)
    seqs = [msg.payload.seq for msg in a.msgs + b.msgs]
    assert sorted(seqs) == list(range(n))  # all delivered, none twice
    assert a.msgs and b.msgs  # both members did part of the work
    for k in {msg.key for msg in timeline}:  # and per-key order holds across the two members
        ks = [msg.payload.seq for msg in timeline if msg.key == k]
        assert ks == sorted(ks), k


async def test_failing_handler_is_retried_then_dead_lettered(bus: Any) -> None:
    attempts: list[int] = []

    async def boom(msg: m.Message) -> None:
        attempts.append(msg.attempt)
        raise ValueError(f"boom {msg.payload.seq}")

    dead, after = Recorder(), Recorder()
    await bus.subscribe("test.fail", "g", boom)
    await bus.subscribe(m.dead_letter_topic("test.fail"), "dl", dead)
    msg_id = await bus.publish("test.fail", m.Ping(seq=42), key="K")
    assert await bus.drain(10)
    assert attempts == [1, 2, 3]  # FAST_RETRY.max_attempts
    [dl] = dead.msgs
    assert isinstance(dl.payload, m.DeadLetter)
    assert dl.payload.error == "ValueError: boom 42"
    assert (dl.payload.message_id, dl.payload.topic, dl.payload.group, dl.payload.attempts) == (
        msg_id,
        "test.fail",
        "g",
        3,
    )
    assert m.decode(dl.payload.raw).payload == m.Ping(seq=42)  # the original is kept, nothing lost
    assert bus.stats.dead_lettered == 1 and bus.stats.retried == 2
    del after


async def test_flaky_handler_succeeds_on_retry_without_dead_letter(bus: Any) -> None:
    seen: list[int] = []

    async def flaky(msg: m.Message) -> None:
        seen.append(msg.attempt)
        if msg.attempt < 2:
            raise ConnectionResetError("transient")

    dead = Recorder()
    await bus.subscribe("test.flaky", "g", flaky)
    await bus.subscribe(m.dead_letter_topic("test.flaky"), "dl", dead)
    await bus.publish("test.flaky", m.Ping(seq=1))
    assert await bus.drain(10)
    assert seen == [1, 2] and dead.msgs == [] and bus.stats.delivered == 1


async def test_malformed_raw_message_is_dead_lettered_and_consumer_survives(bus: Any) -> None:
    rec, dead = Recorder(), Recorder()
    await bus.subscribe("test.raw", "g", rec)
    await bus.subscribe(m.dead_letter_topic("test.raw"), "dl", dead)
    await bus.publish_raw("test.raw", b"{not json", "K")
    wrong = m.encode("test.raw", m.Ping(seq=1)).replace(b'"seq":1', b'"seq":"x"')
    await bus.publish_raw("test.raw", wrong, "K")
    await bus.publish("test.raw", m.Ping(seq=2), key="K")
    assert await bus.drain(10)
    assert [msg.payload.seq for msg in rec.msgs] == [2]  # the consumer kept going
    assert [d.payload.raw for d in dead.msgs] == ["{not json", wrong.decode()]
    assert all(d.payload.error.startswith("MessageError: ") for d in dead.msgs)
    assert "Ping" in dead.msgs[1].payload.error


async def test_messages_published_before_subscribe_are_delivered(bus: Any) -> None:
    for i in range(5):
        await bus.publish("test.early", m.Ping(seq=i), key="K")
    rec = Recorder()
    await bus.subscribe("test.early", "late-service", rec)
    assert await bus.drain(10)
    assert [msg.payload.seq for msg in rec.msgs] == [0, 1, 2, 3, 4]


async def test_close_lets_in_flight_handler_finish(bus: Any) -> None:
    started, finished = asyncio.Event(), []

    async def slow(msg: m.Message) -> None:
        started.set()
        await asyncio.sleep(0.2)
        finished.append(msg.payload.seq)

    await bus.subscribe("test.close", "g", slow)
    await bus.publish("test.close", m.Ping(seq=9), key="K")
    await asyncio.wait_for(started.wait(), 5)
    await bus.close()
    assert finished == [9] and bus.stats.delivered == 1
    with pytest.raises(RuntimeError):
        await bus.publish("test.close", m.Ping(seq=10))


async def test_drain_waits_for_handlers_and_times_out_when_stuck(bus: Any) -> None:
    gate = asyncio.Event()
    done: list[int] = []

    async def gated(msg: m.Message) -> None:
        await gate.wait()
        done.append(msg.payload.seq)

    await bus.subscribe("test.drain", "g", gated)
    for i in range(3):
        await bus.publish("test.drain", m.Ping(seq=i), key="K")
    assert await bus.drain(0.2) is False  # a handler is stuck: drain reports it instead of hanging
    gate.set()
    assert await bus.drain(10) is True
    assert done == [0, 1, 2]
    assert await bus.drain(0.01) is True  # nothing pending: returns at once
