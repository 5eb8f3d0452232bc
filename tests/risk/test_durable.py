"""Risk safety state survives a restart (issue 18): locks keep their original `until`, the kill switch stays
pulled, the equity peak stays (drawdown does not restart from zero), a re-armed loss streak is not counted
again from the stored cycles. Each restart builds a new Host on the same database."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from roottrading import messages as m
from roottrading.clock import SimClock
from roottrading.runtime import Host
from roottrading.store import CycleRepo
from tests.coordinator.helpers import T0, make_host
from tests.risk.test_locks import DRAWDOWN, HOUR, STREAK, allowed, candle_at, events_of, loss


async def restart(host: Host, tmp_path: Path, rules: str, clock: SimClock) -> Host:
    await host.stop()
    return await make_host(tmp_path, ["risk"], rules=rules, clock=clock)


async def store_and_publish_losses(host: Host, n: int, start: int = 0) -> None:
    """Losing cycles as the trader would leave them: stored, then announced."""
    repo = CycleRepo(host.db)
    for i in range(start, start + n):
        c = loss(f"s1-{i}", host.clock.now_ms())
        await repo.save(c)
        await host.bus.publish(m.CYCLE_UPDATES, c, key="BTCUSDT")
    assert await host.bus.drain(5)


async def test_a_loss_streak_lock_keeps_its_until_across_restarts_and_is_not_relocked_after_it(
    tmp_path: Path,
) -> None:
    clock = SimClock(T0)
    host = await make_host(tmp_path, ["risk"], rules=STREAK, clock=clock)
    try:
        await store_and_publish_losses(host, 3)
        assert not (await allowed(host))[0]
        clock.set(T0 + HOUR)
        host = await restart(host, tmp_path, STREAK, clock)
        ev = await events_of(host)
        risk: Any = host.services["risk"]
        ok, why = await allowed(host)
        assert not ok and "until 2024-05-06 12:00 UTC" in why, why  # the original until, not restart + 2h
        assert risk.tracker.locks_on("s1")[0].since_ms == T0
        await candle_at(host, clock, T0 + 2 * HOUR)
        assert ev.actions() == [("resume", "s1")]
        assert (await allowed(host))[0]

        host = await restart(host, tmp_path, STREAK, clock)  # the 3 old losses are still in the store
        risk = host.services["risk"]
        assert (await allowed(host))[0], "a re-armed streak must not be counted again from the stored cycles"
        assert risk.tracker.loss_streaks["s1"] == 0
        await store_and_publish_losses(host, 2, start=3)
        assert (await allowed(host))[0]
        await store_and_publish_losses(host, 1, start=5)
        assert not (await allowed(host))[0]
    finally:
        await host.stop()


async def test_the_kill_switch_and_a_manual_disable_survive_a_restart_until_a_user_lifts_them(
    tmp_path: Path,
) -> None:
    clock = SimClock(T0)
    host = await make_host(tmp_path, ["risk"], rules=STREAK, clock=clock)
    try:
        risk: Any = host.services["risk"]
        await risk.disable_strategy("s2")
        await risk.kill_switch()
        clock.set(T0 + 30 * 24 * HOUR)  # a month later: no cooldown lifts either
        host = await restart(host, tmp_path, STREAK, clock)
        risk = host.services["risk"]
        st = risk.state_view()
        assert st.killed and st.paused and st.disabled_strategies == ["s2"]
        ok, why = await allowed(host)
        assert not ok and "kill switch active" in why
        await risk.resume()
        host = await restart(host, tmp_path, STREAK, clock)
        risk = host.services["risk"]
        assert not risk.state_view().killed
        assert (await allowed(host))[0]
        assert not (await allowed(host, "s2"))[0], "the user's disable outlives the resume and the restart"
    finally:
        await host.stop()


async def test_the_equity_peak_survives_a_restart_so_the_drawdown_does_not_reset(tmp_path: Path) -> None:
    clock = SimClock(T0)
    host = await make_host(tmp_path, ["risk"], rules=DRAWDOWN, clock=clock)
    try:
        for value in ("1000", "970"):  # 3% below the peak: under the 5% limit
            await host.bus.publish(
                m.PORTFOLIO_BALANCES, m.BalancesUpdate(time=T0, balances=[], total_value=Decimal(value))
            )
            assert await host.bus.drain(5)
        host = await restart(host, tmp_path, DRAWDOWN, clock)
        ev = await events_of(host)
        risk: Any = host.services["risk"]
        await host.bus.publish(m.PORTFOLIO_BALANCES, m.BalancesUpdate(time=T0, balances=[], total_value=Decimal(940)))
        assert await host.bus.drain(5)
        assert risk.tracker.snapshot(T0).equity_peak == Decimal(1000)
        assert ev.actions() == [("pause", None)], "6% below the peak of before the restart"
    finally:
        await host.stop()


async def test_a_restart_judges_the_drawdown_from_the_last_reported_equity_not_the_starting_one(
    tmp_path: Path,
) -> None:
    """Found by the HA split test: a risk instance restarted (or taking over) restored the peak of the reported
    equity (50,000) but, until the portfolio's next report, judged the drawdown from its configured starting
    equity (10,000): "max drawdown reached: 80% below the peak", new entries paused for hours. The last
    reported equity is stored with the peak and stands until a report comes."""
    clock = SimClock(T0)
    host = await make_host(tmp_path, ["risk"], rules=DRAWDOWN, clock=clock)
    try:
        await host.bus.publish(
            m.PORTFOLIO_BALANCES, m.BalancesUpdate(time=T0, balances=[], total_value=Decimal(50_000))
        )
        assert await host.bus.drain(5)
        host = await restart(host, tmp_path, DRAWDOWN, clock)
        risk: Any = host.services["risk"]
        ok, why = await allowed(host)
        assert ok, why
        assert risk.tracker.snapshot(T0).equity == Decimal(50_000)
        ev = await events_of(host)
        await host.bus.publish(
            m.PORTFOLIO_BALANCES, m.BalancesUpdate(time=T0, balances=[], total_value=Decimal(47_000))
        )
        assert await host.bus.drain(5)
        assert ev.actions() == [("pause", None)], "6% below the peak: the rule still works after the restart"
    finally:
        await host.stop()
