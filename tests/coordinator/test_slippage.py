"""A market buy may fill above the signal's price. The reservation carries a slippage buffer so that such a fill
is consumed in full (not capped at the reservation, which would leave the excess spent but invisible to the
pocket), and what the fill did not need goes back at once: consumed + returned == reserved."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from roottrading import messages as m
from roottrading.capital import PocketLedger
from roottrading.clock import SimClock
from roottrading.domain import CycleStatus, Side, TradeCycle
from roottrading.services.coordinator.config import CoordinatorConfig
from roottrading.services.coordinator.sizing import (
    SizeRequest,
    fixed_step_rounder,
    reservation_amount,
    reserve_multiplier,
    size_entry,
)
from roottrading.store import Database
from roottrading.store.tables import capital_pockets, pocket_reservations
from tests.coordinator.helpers import Capture, make_host, message, sig

D = Decimal
CFG = CoordinatorConfig()  # the defaults are what is tested


def _cycle(req: Any, status: CycleStatus, fill: Decimal, qty: Decimal, fees: Decimal, pnl: Decimal | None) -> Any:
    return TradeCycle(
        id="cy-slip",
        symbol=req.symbol,
        strategy=req.strategy,
        side=Side.BUY,
        status=status,
        created_at=1,
        updated_at=2,
        entry_price=fill,
        quantity=qty,
        fees=fees,
        profit_loss=pnl,
        reservation_id=req.reservation_id,
    )


async def test_fill_above_the_signal_price_is_consumed_in_full_then_settled(tmp_path: Path) -> None:
    host = await make_host(tmp_path, ["risk", "coordinator"])
    cap = Capture()
    await host.bus.subscribe(m.ORDER_REQUESTS, "test", cap)
    try:
        co: Any = host.services["coordinator"]
        await co.on_signal(message(sig("slip-1", price=100.0, stop=99.0)))
        assert await host.bus.drain(5)
        (req,) = cap.requests
        assert req.quantity == D(20)  # 2000 quote at the signal's price
        reserved = (await co.ledger.get(req.reservation_id)).amount
        assert reserved == D("2012.01")  # 2000 x 1.001 fee buffer x 1.005 slippage buffer
        # the market buy fills 0.4% higher; Binance takes the fee in the base asset (0.1% of 20)
        fill, net_qty, fee_quote = D("100.4"), D("19.98"), D("0.02") * D("100.4")
        cost = fill * net_qty + fee_quote  # = 20 x 100.4 = 2008 quote spent
        await co.on_cycle(
            m.Message(
                id="a",
                topic=m.CYCLE_UPDATES,
                key=None,
                ts=0,
                payload=_cycle(req, CycleStatus.ACTIVE, fill, net_qty, fee_quote, None),
            )
        )
        res = await co.ledger.get(req.reservation_id)
        assert res.status == "consumed" and res.amount == cost  # not capped at the reservation
        active = {p.pocket_type: p for p in await co.ledger.pockets()}["active"]
        assert active.used_value == cost and active.available_value == D(6000) - cost
        await co.on_cycle(
            m.Message(
                id="b",
                topic=m.CYCLE_UPDATES,
                key=None,
                ts=0,
                payload=_cycle(req, CycleStatus.COMPLETED, fill, net_qty, fee_quote, D(-12)),
            )
        )
        active = {p.pocket_type: p for p in await co.ledger.pockets()}["active"]
        assert active.used_value == 0 and active.available_value == D(6000) - D(12)
    finally:
        await host.stop()


@pytest.fixture
async def ledger_db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/slip.db")
    await database.migrate()
    try:
        yield database
    finally:
        await database.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    price=st.decimals(min_value=D("0.01"), max_value=D(100_000), places=2),
    stop_frac=st.decimals(min_value=D("0.80"), max_value=D("0.995"), places=3),
    equity=st.decimals(min_value=D(1_000), max_value=D(1_000_000), places=2),
    avail_frac=st.decimals(min_value=D("0.05"), max_value=D(1), places=2),
    slip=st.decimals(min_value=D(0), max_value=D(1), places=4),  # share of the slippage buffer used
    fee=st.decimals(min_value=D(0), max_value=D(1), places=4),  # share of the fee buffer paid, in quote
    step=st.sampled_from([D("0.00001"), D("0.001"), D(1)]),
    pnl_frac=st.decimals(min_value=D("-0.5"), max_value=D("0.5"), places=3),
)
async def test_fills_within_the_buffer_are_never_capped_and_settle_fully(
    ledger_db: Database,
    price: Decimal,
    stop_frac: Decimal,
    equity: Decimal,
    avail_frac: Decimal,
    slip: Decimal,
    fee: Decimal,
    step: Decimal,
    pnl_frac: Decimal,
) -> None:
    async with ledger_db.begin() as conn:
        await conn.execute(delete(pocket_reservations))
        await conn.execute(delete(capital_pockets))
    ledger = PocketLedger(ledger_db, SimClock(1_000), {"active": D(100)})
    await ledger.ensure_initialised(equity)
    available = (equity * avail_frac).quantize(D("0.01"))
    if available < equity:  # part of the pocket already in use by another cycle
        await ledger.reserve("other", equity - available)
    sizing = size_entry(
        SizeRequest(
            equity=equity,
            price=price,
            stop=price * stop_frac,
            risk_pct=CFG.risk_pct,
            default_stop_pct=CFG.default_stop_pct,
            available=available,
            fee_buffer_pct=CFG.fee_buffer_pct,
            slippage_buffer_pct=CFG.slippage_buffer_pct,
        ),
        fixed_step_rounder(step),
        D(10),
    )
    if not sizing.ok:
        return
    mult = reserve_multiplier(CFG.fee_buffer_pct, CFG.slippage_buffer_pct)
    amount = min(sizing.reserve_amount, reservation_amount(sizing.quantity, price, mult))
    await ledger.reserve("r", amount)  # never refused: sized within what is available

    fill = price * (1 + slip * CFG.slippage_buffer_pct / 100)
    cost = (sizing.quantity * fill * (1 + fee * CFG.fee_buffer_pct / 100)).quantize(D("1e-12"))
    await ledger.consume("r", cost)
    res = await ledger.get("r")
    assert res is not None and res.status == "consumed"
    assert res.amount == cost, f"capped: spent {cost}, reservation kept {res.amount} of {amount}"
    pocket = (await ledger.pockets())[0]
    assert pocket.used_value == (equity - available) + cost  # the unused part went back at once
    assert pocket.used_value + pocket.available_value == equity

    pnl = (cost * pnl_frac).quantize(D("0.01"))
    await ledger.release("r", "cycle completed", pnl=pnl)
    await ledger.release("other", "test")
    pocket = (await ledger.pockets())[0]
    assert pocket.used_value == 0 and pocket.available_value == pocket.current_value == equity + pnl
