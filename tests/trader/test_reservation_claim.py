"""An entry is never sent on released funds (issue 17, item 10).

The portfolio's reconciliation releases a reservation that has no cycle after 15 minutes; the order request
can still arrive later (trader down, bus backlog). Before the fix the trader opened the position anyway, on
money the pockets had already given back. Now the trader claims the reservation in the transaction that
stores the cycle, and the stale release only wins over a reservation nobody claimed.
"""

from __future__ import annotations

from decimal import Decimal

from roottrading import ids
from roottrading.capital.ledger import PocketLedger
from roottrading.domain import CycleStatus
from tests.trader.conftest import SYM, Rig, req

D = Decimal
POCKETS = {"active": D(60), "buffer": D(30), "safety": D(10)}


async def _ledger(rig: Rig) -> PocketLedger:
    assert rig.host is not None
    ledger = PocketLedger(rig.host.db, rig.clock, POCKETS)
    await ledger.ensure_initialised(D(10_000))
    return ledger


async def test_an_entry_whose_reservation_was_released_is_not_sent(rig: Rig) -> None:
    ledger = await _ledger(rig)
    await ledger.reserve("res-1", D(250), pocket="active", cycle_id=ids.cycle_id("late"), reason="entry")
    assert await ledger.release("res-1", "reconcile: no cycle started", only_if_idle_since=rig.clock.now_ms())
    await rig.send(req("late", reservation_id="res-1"))
    c = await rig.cycle(ids.cycle_id("late"))
    assert c.status is CycleStatus.CANCELED and "reservation released" in (c.close_reason or "")
    assert rig.engine.all_orders(SYM) == []  # nothing reached the exchange
    assert rig.engine.balance("USDT").free == D(10000)


async def test_a_claimed_reservation_is_not_released_as_stale(rig: Rig) -> None:
    ledger = await _ledger(rig)
    read_at = rig.clock.now_ms()
    await ledger.reserve("res-2", D(250), pocket="active", cycle_id=ids.cycle_id("ok"), reason="entry")
    rig.clock.advance(1)
    await rig.send(req("ok", reservation_id="res-2"))  # the trader claims it while storing the cycle
    assert (await rig.cycle(ids.cycle_id("ok"))).status is CycleStatus.ACTIVE
    # the reconciler read "no cycle" before the claim and releases only if untouched since then
    assert not await ledger.release("res-2", "reconcile: no cycle started", only_if_idle_since=read_at)
    (res,) = [r for r in await ledger.reservations() if r.id == "res-2"]
    assert res.status != "released"
