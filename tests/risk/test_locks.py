"""Protections with a duration: a rule's lock (loss streak, drawdown, daily loss) ends after its `cooldown` of
MARKET time (a SimClock here, as in demo and backtest: no sleep, no wall clock), with a `resume` event and the
rule counted afresh; a user's disable or pause is never lifted by a cooldown."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from roottrading import messages as m
from roottrading.clock import SimClock
from roottrading.domain import CycleStatus, Side, TradeCycle
from roottrading.risk import OrderIntent
from roottrading.risk.state import DAY_MS, MANUAL, Lock, StateTracker
from roottrading.runtime import Host
from roottrading.runtime.http import build_app
from tests.coordinator.helpers import T0, TOKEN, candle, make_host

AUTH = {"Authorization": f"Bearer {TOKEN}"}
HOUR = 3_600_000
STREAK = """version: 1
rules:
  strategy_loss_streak: {max_consecutive_losses: 3, cooldown: 2h}
"""


class Events:
    def __init__(self) -> None:
        self.items: list[m.RiskEvent] = []

    async def __call__(self, msg: m.Message) -> None:
        self.items.append(msg.payload)

    def actions(self) -> list[tuple[str, str | None]]:
        return [(e.action, e.strategy) for e in self.items]


async def events_of(host: Host) -> Events:
    ev = Events()
    await host.bus.subscribe(m.RISK_EVENTS, "test", ev)
    return ev


def loss(cid: str, at: int, strategy: str = "s1", pl: str = "-5") -> TradeCycle:
    return TradeCycle(
        id=cid,
        symbol="BTCUSDT",
        strategy=strategy,
        side=Side.BUY,
        status=CycleStatus.COMPLETED,
        created_at=at,
        updated_at=at,
        quantity=Decimal("0.01"),
        entry_price=Decimal(100),
        exit_price=Decimal(99),
        profit_loss=Decimal(pl),
    )


async def lose(host: Host, n: int, strategy: str = "s1", start: int = 0) -> None:
    now = host.clock.now_ms()
    for i in range(start, start + n):
        await host.bus.publish(m.CYCLE_UPDATES, loss(f"{strategy}-{i}", now, strategy), key="BTCUSDT")
    assert await host.bus.drain(5)


async def allowed(host: Host, strategy: str = "s1") -> tuple[bool, str]:
    risk: Any = host.services["risk"]
    intent = OrderIntent(
        id=f"i-{host.clock.now_ms()}-{strategy}",
        symbol="BTCUSDT",
        side=Side.BUY,
        quantity=Decimal("0.001"),
        price=Decimal(100),
        strategy=strategy,
    )
    d = await risk.check(intent)
    return d.allowed, "; ".join(d.reasons)


async def candle_at(host: Host, clock: SimClock, t: int) -> None:
    """Market time moves to `t` with a candle, as the gateway moves it in the demo."""
    clock.set(t)
    await host.bus.publish(m.candles_topic("BTCUSDT"), candle("BTCUSDT", 100.0, t - 60_000), key="BTCUSDT")
    assert await host.bus.drain(5)


async def test_loss_streak_lock_lifted_after_the_cooldown_in_market_time_and_not_before(tmp_path: Path) -> None:
    clock = SimClock(T0)
    host = await make_host(tmp_path, ["risk"], rules=STREAK, clock=clock)
    ev = await events_of(host)
    risk: Any = host.services["risk"]
    try:
        await lose(host, 3)
        assert ev.actions() == [("disable_strategy", "s1")]
        assert "locked until 2024-05-06 12:00 UTC" in ev.items[0].message  # T0 is 10:00, cooldown 2h
        ok, why = await allowed(host)
        assert not ok and "strategy_loss_streak, until 2024-05-06 12:00 UTC" in why
        assert (await allowed(host, "s2"))[0], "only the losing strategy is locked"

        await candle_at(host, clock, T0 + 2 * HOUR - 1)  # one ms before the end: still locked
        assert not (await allowed(host))[0]
        assert ev.actions() == [("disable_strategy", "s1")]

        await candle_at(host, clock, T0 + 2 * HOUR)  # the candle that reaches the end lifts it, no order needed
        assert ev.actions() == [("disable_strategy", "s1"), ("resume", "s1")]
        resume = ev.items[-1]
        assert resume.rule == "strategy_loss_streak" and "cooldown over" in resume.message
        assert "loss streak counted from 0" in resume.message
        assert (await allowed(host))[0]
        assert risk.tracker.loss_streaks["s1"] == 0

        await lose(host, 2, start=3)  # two new losses: not locked again by the three old ones
        assert (await allowed(host))[0] and len(ev.items) == 2
        await lose(host, 1, start=5)  # the third new one locks again, for a fresh 2h
        assert ev.actions()[-1] == ("disable_strategy", "s1")
        assert risk.tracker.locks_on("s1")[0].until_ms == T0 + 4 * HOUR
    finally:
        await host.stop()


async def test_state_route_lists_the_locks_with_until_and_the_openapi_describes_them(tmp_path: Path) -> None:
    clock = SimClock(T0)
    host = await make_host(tmp_path, ["risk"], rules=STREAK, clock=clock)
    try:
        await lose(host, 3)
        app = build_app(host)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            assert (await c.post("/api/risk/strategies/s2/disable", headers=AUTH)).json() == {
                "strategy": "s2",
                "enabled": False,
            }
            st = (await c.get("/api/risk/state")).json()
            assert st["now"] == T0 and st["disabled_strategies"] == ["s1", "s2"] and st["paused"] is False
            locks = {lk["strategy"]: lk for lk in st["locks"]}
            assert locks["s1"] == {
                "strategy": "s1",
                "rule": "strategy_loss_streak",
                "action": "disable_strategy",
                "reason": "strategy s1 lost 3 cycles in a row (limit 3)",
                "automatic": True,
                "since": T0,
                "until": T0 + 2 * HOUR,
            }
            assert locks["s2"]["rule"] == "manual" and locks["s2"]["until"] is None and not locks["s2"]["automatic"]
            schema = (await c.get("/openapi.json")).json()
        ref = schema["paths"]["/api/risk/state"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert ref["$ref"].endswith("/StateView")
        lock_props = schema["components"]["schemas"]["LockView"]["properties"]
        assert {"strategy", "rule", "action", "since", "until", "automatic", "reason"} <= set(lock_props)
    finally:
        await host.stop()


async def test_a_manual_disable_is_not_lifted_by_the_cooldown(tmp_path: Path) -> None:
    clock = SimClock(T0)
    host = await make_host(tmp_path, ["risk"], rules=STREAK, clock=clock)
    ev = await events_of(host)
    risk: Any = host.services["risk"]
    try:
        await lose(host, 3)  # automatic lock on s1 until T0 + 2h
        assert await risk.disable_strategy("s1")  # and the user disables it too
        assert await risk.disable_strategy("s2")  # a strategy only the user disabled
        assert not await risk.disable_strategy("s2")  # idempotent: no second lock, no second event
        await candle_at(host, clock, T0 + 30 * DAY_MS)  # long after any cooldown
        ok, why = await allowed(host, "s1")
        assert not ok and "disabled by a user until enabled again" in why
        assert not (await allowed(host, "s2"))[0]
        assert [lk.rule for lk in risk.tracker.locks_on("s1")] == ["manual"]  # the automatic one is gone
        assert ("resume", "s1") not in ev.actions(), "no resume while the user's disable stands"
        await risk.resume()  # the user's global resume does not enable what the user disabled
        assert not (await allowed(host, "s2"))[0]
        await risk.enable_strategy("s1")
        assert await host.bus.drain(5)
        ok, _ = await allowed(host, "s1")
        assert ok and ev.actions()[-1] == ("resume", "s1") and ev.items[-1].rule == "manual"
    finally:
        await host.stop()


async def test_an_automatic_lock_does_not_replace_a_manual_one(tmp_path: Path) -> None:
    clock = SimClock(T0)
    host = await make_host(tmp_path, ["risk"], rules=STREAK, clock=clock)
    risk: Any = host.services["risk"]
    try:
        await risk.disable_strategy("s1")
        await lose(host, 3)  # losses of cycles opened before the disable: no automatic lock on top
        assert [lk.rule for lk in risk.tracker.locks_on("s1")] == ["manual"]
        assert risk.tracker.locks_on("s1")[0].until_ms is None
    finally:
        await host.stop()


DRAWDOWN = """version: 1
rules:
  max_drawdown: {limit_pct: 5, action: pause, cooldown: 1h}
  daily_loss_limit: {enabled: false}
"""


async def test_a_drawdown_pause_resumes_after_its_cooldown_and_counts_from_there(tmp_path: Path) -> None:
    clock = SimClock(T0)
    host = await make_host(tmp_path, ["risk"], rules=DRAWDOWN, clock=clock)
    ev = await events_of(host)
    risk: Any = host.services["risk"]
    try:
        for value in ("1000", "900"):  # 10% below the peak
            await host.bus.publish(
                m.PORTFOLIO_BALANCES, m.BalancesUpdate(time=T0, balances=[], total_value=Decimal(value))
            )
            assert await host.bus.drain(5)
        assert ev.actions() == [("pause", None)]
        ok, why = await allowed(host)
        assert not ok and "max drawdown reached" in why and "until 2024-05-06 11:00 UTC" in why
        await candle_at(host, clock, T0 + HOUR - 60_000)
        assert not (await allowed(host))[0]
        await candle_at(host, clock, T0 + HOUR)
        assert ev.actions() == [("pause", None), ("resume", None)] and ev.items[-1].rule == "max_drawdown"
        assert (await allowed(host))[0], "not paused again by the same old drawdown"
        assert risk.tracker.equity_peak == Decimal(900)
        await host.bus.publish(m.PORTFOLIO_BALANCES, m.BalancesUpdate(time=T0, balances=[], total_value=Decimal(850)))
        assert await host.bus.drain(5)  # 5.6% below the new reference: paused again
        assert ev.actions()[-1] == ("pause", None)
    finally:
        await host.stop()


async def test_a_daily_loss_pause_lasts_until_midnight_or_its_cooldown(tmp_path: Path) -> None:
    rules = "version: 1\nrules:\n  daily_loss_limit: {limit_pct: 1, cooldown: 3h}\n  strategy_loss_streak: {enabled: false}\n"
    clock = SimClock(T0 + 12 * HOUR)  # 22:00 UTC: midnight comes before the 3h cooldown
    host = await make_host(tmp_path, ["risk"], rules=rules, clock=clock)
    risk: Any = host.services["risk"]
    try:
        await host.bus.publish(m.CYCLE_UPDATES, loss("big", clock.now_ms(), pl="-200"), key="BTCUSDT")
        assert await host.bus.drain(5)
        midnight = (clock.now_ms() // DAY_MS + 1) * DAY_MS
        assert risk.tracker.locks_on(None)[0].until_ms == midnight
        await candle_at(host, clock, midnight)
        assert not risk.tracker.paused and (await allowed(host))[0]
    finally:
        await host.stop()


async def test_the_end_of_a_risk_pause_does_not_lift_the_users_own_pause_of_the_trader(tmp_path: Path) -> None:
    clock = SimClock(T0)
    host = await make_host(tmp_path, ["trader", "risk"], rules=DRAWDOWN, clock=clock)
    trader: Any = host.services["trader"]
    try:
        trader.core.pause()  # the user's "Pause new entries" on the dashboard
        for value in ("1000", "900"):
            await host.bus.publish(
                m.PORTFOLIO_BALANCES, m.BalancesUpdate(time=T0, balances=[], total_value=Decimal(value))
            )
            assert await host.bus.drain(5)
        assert host.services["risk"].tracker.paused  # type: ignore[attr-defined]
        await candle_at(host, clock, T0 + HOUR)
        assert not host.services["risk"].tracker.paused  # type: ignore[attr-defined]
        assert trader.core.paused, "the user's pause stays until the user resumes"

        trader.core.resume()  # the user resumes; now a pause by the risk manager alone ...
        await host.bus.publish(m.PORTFOLIO_BALANCES, m.BalancesUpdate(time=T0, balances=[], total_value=Decimal(800)))
        assert await host.bus.drain(5)
        assert trader.core.paused
        await candle_at(host, clock, T0 + 2 * HOUR)
        assert not trader.core.paused  # ... ends with its cooldown
    finally:
        await host.stop()


async def test_a_loss_streak_set_to_pause_pauses_everything_and_resumes_everything(tmp_path: Path) -> None:
    rules = "version: 1\nrules:\n  strategy_loss_streak: {max_consecutive_losses: 2, action: pause, cooldown: 30m}\n"
    clock = SimClock(T0)
    host = await make_host(tmp_path, ["trader", "risk"], rules=rules, clock=clock)
    trader: Any = host.services["trader"]
    risk: Any = host.services["risk"]
    ev = await events_of(host)
    try:
        await lose(host, 2)
        assert ev.actions() == [("pause", None)] and "strategy s1 lost 2 cycles" in ev.items[0].message
        assert trader.core.paused and not (await allowed(host, "s2"))[0]  # every strategy, not only s1
        await candle_at(host, clock, T0 + 30 * 60_000)
        assert ev.actions()[-1] == ("resume", None)
        assert not trader.core.paused and not trader.core.paused_strategies
        assert (await allowed(host, "s1"))[0] and risk.tracker.loss_streaks["s1"] == 0
    finally:
        await host.stop()


def test_tracker_lifts_only_automatic_locks_and_only_at_their_until() -> None:
    t = StateTracker(Decimal(1000), T0)
    t.loss_streaks["s1"] = 5
    assert t.lock(Lock("strategy_loss_streak", "disable_strategy", "5 losses", T0, T0 + HOUR, "s1"))
    assert not t.lock(Lock("strategy_loss_streak", "disable_strategy", "again", T0 + 1, T0 + 9 * HOUR, "s1"))
    t.lock(Lock(MANUAL, "disable_strategy", "disabled by user", T0, None, "s2"))
    t.lock(Lock("kill_switch", "kill_switch", "pulled", T0, None))
    assert t.expire(T0 + HOUR - 1) == [] and t.snapshot(T0 + HOUR - 1).disabled_strategies == {"s1", "s2"}
    assert t.snapshot(T0 + HOUR).disabled_strategies == {"s2"}  # an expired lock binds no more, even unlifted
    assert [lk.strategy for lk in t.expire(T0 + HOUR)] == ["s1"] and t.loss_streaks["s1"] == 0
    assert t.expire(T0 + 1000 * DAY_MS) == [] and t.killed  # manual ones never expire
    lifted = t.resume()
    assert [lk.rule for lk in lifted] == ["kill_switch"] and not t.killed and not t.paused
    assert t.disabled == {"s2"}  # the user's disable outlives the user's resume
    t.reset_strategy("s2")
    assert t.locks == {}
