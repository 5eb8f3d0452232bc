"""Reconciliation reads the exchange's side too (issue 17, item 13).

A power cut can roll back a committed intent whose order already reached the exchange; reconciliation used
to walk stored orders only, so such an order (and the position it opened or closed) was never managed.
Now orders with our client-id prefix that the store lacks are adopted; a person's orders are left alone.
"""

from __future__ import annotations

from decimal import Decimal

from roottrading import ids
from roottrading.domain import CycleStatus, OrderType, Side, TimeInForce
from tests.trader.conftest import SYM, Rig, req

D = Decimal


async def test_an_entry_lost_by_the_store_is_adopted_and_managed(rig: Rig) -> None:
    lost = ids.client_order_id("req-lost-in-a-power-cut", "entry")
    rig.engine.place_order(SYM, Side.BUY, OrderType.MARKET, lost, quantity=D("0.01"))  # reached the exchange
    person = rig.engine.place_order(
        SYM,
        Side.BUY,
        OrderType.LIMIT,
        "web_person_1",
        quantity=D("0.01"),
        price=D("15000"),
        time_in_force=TimeInForce.GTC,
    )
    out = await rig.core.reconcile()
    assert out["adopted_unknown"] == 1 and out["foreign"] == 1
    adopted = [c for c in rig.core.open.values() if c.entry_order_id == lost]
    assert len(adopted) == 1
    c = await rig.cycle(adopted[0].id)
    assert c.status is CycleStatus.ACTIVE and c.strategy == "adopted" and c.quantity == D("0.00999")
    assert rig.engine.get_order(SYM, person.client_order_id).status.value == "NEW"  # untouched
    assert (await rig.core.reconcile())["adopted_unknown"] == 0  # once


async def test_an_exit_lost_by_the_store_is_attached_to_its_cycle(rig: Rig) -> None:
    await rig.send(req("r1"))
    cid = ids.cycle_id("r1")
    held = (await rig.cycle(cid)).quantity
    exit_id = ids.client_order_id(cid, "exit:0")  # what start_exit would have named it
    rig.engine.place_order(SYM, Side.SELL, OrderType.MARKET, exit_id, quantity=held)
    out = await rig.core.reconcile()
    assert out["adopted_unknown"] == 1
    c = await rig.cycle(cid)
    assert c.status is CycleStatus.COMPLETED and c.exit_order_id == exit_id and c.exit_price == D(20000)
