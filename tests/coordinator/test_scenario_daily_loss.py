"""Scenario: a losing streak crosses the daily loss limit; new entries are then refused with the reason,
while the exit of a position opened earlier still runs. Trader v0 + risk + coordinator + real ledger."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from roottrading import messages as m
from roottrading.clock import SimClock
from roottrading.domain import CycleStatus, Side, TradeCycle
from tests.coordinator.helpers import T0, candle, make_host, sig

RULES = """version: 1
rules:
  daily_loss_limit: {limit_pct: 2, action: pause}
  strategy_loss_streak: {enabled: false}
"""


async def test_losing_streak_pauses_entries_but_exits_still_run(tmp_path: Path) -> None:
    clock = SimClock(T0)
    host = await make_host(
        tmp_path, ["trader", "risk", "coordinator"], rules=RULES, clock=clock, symbols="BTCUSDT,ETHUSDT"
    )
    co: Any = host.services["coordinator"]
    events: list[m.RiskEvent] = []

    async def on_event(msg: m.Message) -> None:
        events.append(msg.payload)

    async def settle(msg: m.Message) -> None:  # the portfolio's part: free funds when a cycle ends
        c: TradeCycle = msg.payload
        if c.status is CycleStatus.COMPLETED and c.reservation_id:
            await co.ledger.release(c.reservation_id, "cycle completed", pnl=c.profit_loss or Decimal(0))

    await host.bus.subscribe(m.RISK_EVENTS, "test", on_event)
    await host.bus.subscribe(m.CYCLE_UPDATES, "test-portfolio", settle)
    t = T0

    async def step(symbol: str, price: float, *signals: Any) -> None:
        nonlocal t
        t += 60_000
        clock.set(t)
        await host.bus.publish(m.candles_topic(symbol), candle(symbol, price, t - 60_000), key=symbol)
        assert await host.bus.drain(5)
        for s in signals:
            await host.bus.publish(m.SIGNALS, s, key=s.symbol, msg_id=s.id)
            assert await host.bus.drain(5)

    async def reason(sid: str) -> dict[str, Any]:
        return (await co.decisions.query(signal_id=sid))[0]  # type: ignore[no-any-return]

    try:
        await step("ETHUSDT", 100.0, sig("hold-in", symbol="ETHUSDT", strategy="holder", time=t))
        assert (await reason("hold-in"))["decision"] == "accepted"
        for i in range(3):  # stop 90: 1% risk = 10 units; exit at 92 loses 80 + fees per cycle
            await step("BTCUSDT", 100.0, sig(f"in-{i}", strategy="loser", stop=90.0, time=t + 1))
            await step("BTCUSDT", 92.0, sig(f"out-{i}", Side.SELL, strategy="loser", price=92.0, time=t + 1))
            if i < 2:
                assert events == [], "not paused before the limit is crossed"
            assert (await reason(f"in-{i}"))["decision"] == "accepted"
            assert (await reason(f"out-{i}"))["decision"] == "accepted"
        cycles, _ = await host.services["trader"].cycles.query(strategy="loser")  # type: ignore[attr-defined]
        losses = [c.profit_loss for c in cycles]
        assert len(losses) == 3 and all(pl < 0 for pl in losses) and sum(losses) <= Decimal(-200)
        assert [e.action for e in events] == ["pause"] and "daily loss limit" in events[0].message

        await step(
            "BTCUSDT", 92.0, sig("in-3", strategy="loser", time=t + 1), sig("fresh", strategy="newcomer", time=t + 1)
        )
        rules = {r["name"]: r for r in host.services["risk"].rules_view()}  # type: ignore[attr-defined]
        assert rules["daily_loss_limit"]["state"] == "breached"
        for sid in ("in-3", "fresh"):
            row = await reason(sid)
            assert row["decision"] == "rejected" and "daily loss limit reached" in row["reason"], row

        await step(
            "ETHUSDT", 101.0, sig("hold-out", Side.SELL, symbol="ETHUSDT", strategy="holder", price=101.0, time=t + 1)
        )
        assert (await reason("hold-out"))["decision"] == "accepted"
        held, _ = await host.services["trader"].cycles.query(strategy="holder")  # type: ignore[attr-defined]
        assert held[0].status is CycleStatus.COMPLETED and held[0].profit_loss > 0
        rules = {r["name"]: r for r in host.services["risk"].rules_view()}  # type: ignore[attr-defined]
        assert rules["pause"]["state"] == "active"  # paused until resumed or the next UTC day
    finally:
        await host.stop()
