"""The risk tracker's memory of counted cycles is bounded, and never counts a cycle twice (issue 17, item 14)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from roottrading.domain import CycleStatus, Side, TradeCycle
from roottrading.risk import state as risk_state
from roottrading.risk.state import StateTracker


def _closed(i: int, pnl: str = "1") -> TradeCycle:
    return TradeCycle(
        id=f"c{i}",
        symbol="BTCUSDT",
        strategy="s",
        side=Side.BUY,
        status=CycleStatus.COMPLETED,
        created_at=i,
        updated_at=1_000 + i,
        profit_loss=Decimal(pnl),
    )


def test_counted_cycles_are_bounded_and_a_forgotten_one_is_not_counted_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(risk_state, "MAX_COUNTED", 10)
    t = StateTracker(Decimal(1000), now_ms=0)
    for i in range(100):
        t.on_cycle(_closed(i), now_ms=2_000)
    assert len(t.counted) == 10
    assert t.realised_total == Decimal(100)
    for i in range(100):  # every close redelivered (a bus replay): nothing counted twice
        t.on_cycle(_closed(i), now_ms=2_000)
    assert t.realised_total == Decimal(100)
