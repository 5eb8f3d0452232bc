"""Reservations made by the coordinator are settled by the cycle's outcome: consumed on entry, released with
the PnL at the end, exactly once even when cycle updates are redelivered."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from roottrading import messages as m
from roottrading.domain import CycleStatus, Side, TradeCycle
from tests.coordinator.helpers import make_host


def cycle(status: CycleStatus, *, pnl: Decimal | None = None) -> TradeCycle:
    return TradeCycle(
        id="cy-1",
        symbol="BTCUSDT",
        strategy="s1",
        side=Side.BUY,
        status=status,
        created_at=1,
        updated_at=2,
        entry_price=Decimal("100"),
        quantity=Decimal("2"),
        fees=Decimal("0.2"),
        profit_loss=pnl,
        reservation_id="res-1",
    )


async def test_cycle_outcome_settles_the_reservation_once(tmp_path: Path) -> None:
    host = await make_host(tmp_path, ["coordinator"])
    try:
        svc = host.services["coordinator"]
        ledger = svc.ledger  # type: ignore[attr-defined]
        before = {p.pocket_type: p for p in await ledger.pockets()}["active"]
        await ledger.reserve("res-1", Decimal("300"), cycle_id="cy-1")
        await svc.on_cycle(
            m.Message(
                id="u1",
                topic=m.CYCLE_UPDATES,
                key=None,
                ts=0,  # type: ignore[attr-defined]
                payload=cycle(CycleStatus.ACTIVE),
            )
        )
        active = {p.pocket_type: p for p in await ledger.pockets()}["active"]
        assert active.used_value == Decimal("200.2")  # what the entry really cost; the rest went back
        done = cycle(CycleStatus.COMPLETED, pnl=Decimal("-10.5"))
        for i in range(3):  # redelivered: settled once
            await svc.on_cycle(
                m.Message(
                    id=f"d{i}",
                    topic=m.CYCLE_UPDATES,
                    key=None,
                    ts=0,  # type: ignore[attr-defined]
                    payload=done,
                )
            )
        after = {p.pocket_type: p for p in await ledger.pockets()}["active"]
        assert after.used_value == 0
        assert after.available_value == before.available_value - Decimal("10.5")
        assert (await ledger.get("res-1")).status == "released"
    finally:
        await host.stop()
