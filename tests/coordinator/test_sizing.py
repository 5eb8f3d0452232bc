"""Sizing: risk-based quantity, capped by the pocket and per-symbol limits, rounded down to the step."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from roottrading.services.coordinator.sizing import SizeRequest, fixed_step_rounder, size_entry

D = Decimal
STEP = D("0.00001")


def req(**kw: object) -> SizeRequest:
    base: dict[str, object] = {
        "equity": D(10_000),
        "price": D(100),
        "stop": D(98),
        "risk_pct": D(1),
        "default_stop_pct": D(2),
        "available": D(6000),
    }
    base.update(kw)
    return SizeRequest(**base)  # type: ignore[arg-type]


def test_quantity_from_risk_over_stop_distance() -> None:
    s = size_entry(req(), fixed_step_rounder(STEP), D(10))
    assert s.ok and s.quantity == D(50) and s.risk_amount == D(100) and s.capped_by == []


def test_default_stop_when_signal_has_none_or_a_useless_one() -> None:
    for stop in (None, D(200), D(205)):
        s = size_entry(req(stop=stop, price=D(200)), fixed_step_rounder(STEP), D(10))
        assert s.stop == D(196) and s.quantity == D(25)


def test_capped_by_pocket_and_symbol_limits() -> None:
    s = size_entry(req(available=D(1000)), fixed_step_rounder(STEP), D(10))
    assert s.capped_by == ["pocket"] and s.notional <= D(1000)
    s = size_entry(req(max_quantity=D(3)), fixed_step_rounder(STEP), D(10))
    assert s.quantity == D(3) and s.capped_by == ["max_quantity"]
    s = size_entry(req(max_notional=D(550)), fixed_step_rounder(STEP), D(10))
    assert s.quantity == D("5.5") and s.capped_by == ["max_notional"]


def test_below_min_notional_or_empty_pocket_is_rejected() -> None:
    s = size_entry(req(available=D(5)), fixed_step_rounder(STEP), D(10))
    assert not s.ok and "below min notional 10" in (s.reject_reason or "")
    s = size_entry(req(available=D(0)), fixed_step_rounder(STEP), D(10))
    assert not s.ok and "no funds available" in (s.reject_reason or "")


def test_symbol_rules_rounder_is_used() -> None:
    s = size_entry(req(), fixed_step_rounder(D(7)), D(10))
    assert s.quantity == D(49)


@settings(max_examples=300, deadline=None)
@given(
    equity=st.decimals(min_value=D(50), max_value=D(10_000_000), places=2),
    price=st.decimals(min_value=D("0.0001"), max_value=D(200_000), places=4),
    stop_frac=st.one_of(st.none(), st.decimals(min_value=D("0.5"), max_value=D("0.9999"), places=4)),
    risk_pct=st.decimals(min_value=D("0.01"), max_value=D(5), places=2),
    avail_frac=st.decimals(min_value=D(0), max_value=D(1), places=3),
    fee=st.decimals(min_value=D(0), max_value=D(1), places=2),
    step=st.sampled_from([D("0.00001"), D("0.001"), D(1)]),
)
def test_never_exceeds_pocket_or_risk_budget(
    equity: Decimal,
    price: Decimal,
    stop_frac: Decimal | None,
    risk_pct: Decimal,
    avail_frac: Decimal,
    fee: Decimal,
    step: Decimal,
) -> None:
    available = equity * avail_frac
    stop = None if stop_frac is None else price * stop_frac
    s = size_entry(
        req(equity=equity, price=price, stop=stop, risk_pct=risk_pct, available=available, fee_buffer_pct=fee),
        fixed_step_rounder(step),
        D(10),
    )
    if not s.ok:
        assert s.quantity == 0
        return
    assert s.quantity > 0 and s.quantity % step == 0
    assert s.quantity * price <= available  # never more than the pocket has
    assert s.reserve_amount <= available and s.reserve_amount >= s.notional
    assert s.quantity * s.stop_distance <= equity * risk_pct / 100 + step * s.stop_distance  # within a step
    assert s.notional >= D(10)
