"""A fixed stake per trade (COORDINATOR_STAKE_QUOTE, `backtest --stake`) replaces the risk budget in sizing;
every cap (pocket, max quantity/notional, step rounding) still applies."""

from __future__ import annotations

from decimal import Decimal

from roottrading.services.coordinator.sizing import SizeRequest, fixed_step_rounder, size_entry

STEP = fixed_step_rounder(Decimal("0.00001"))


def req(**kw: object) -> SizeRequest:
    base: dict[str, object] = {
        "equity": Decimal(10_000),
        "price": Decimal(20_000),
        "stop": Decimal(19_600),
        "risk_pct": Decimal(1),
        "default_stop_pct": Decimal(2),
        "available": Decimal(6_000),
    }
    base.update(kw)
    return SizeRequest(**base)  # type: ignore[arg-type]


def test_stake_sets_the_notional_instead_of_the_risk_budget() -> None:
    risk = size_entry(req(), STEP, Decimal(10))
    assert risk.quantity == Decimal("0.25")  # 100 quote at risk over a 400 stop distance
    staked = size_entry(req(stake=Decimal(500)), STEP, Decimal(10))
    assert staked.ok and staked.quantity == Decimal("0.025") and staked.notional == Decimal(500)
    assert staked.capped_by == []


def test_stake_is_still_capped_by_the_pocket_and_limits() -> None:
    s = size_entry(req(stake=Decimal(50_000)), STEP, Decimal(10))
    assert s.capped_by == ["pocket"] and s.notional <= Decimal(6_000)
    s = size_entry(req(stake=Decimal(500), max_notional=Decimal(300)), STEP, Decimal(10))
    assert s.capped_by == ["max_notional"] and s.notional == Decimal(300)
    s = size_entry(req(stake=Decimal(5)), STEP, Decimal(10))
    assert not s.ok and "below min notional" in (s.reject_reason or "")
