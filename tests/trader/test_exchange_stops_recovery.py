"""Exchange stops across crashes and restarts (services/trader/exchange_stops.py), through the trader against
the simulator: a stop filled or gapped through while the trader is down, a missing stop placed again, an
intent lost in a crash, a cancel whose outcome is unknown, an adapter without OCO, pockets settled.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from roottrading import ids
from roottrading.clock import SimClock
from roottrading.domain import CycleStatus, OrderStatus, OrderType, Side
from roottrading.exchange.errors import Disconnected, OrderTypeNotSupported
from roottrading.exchange.sim import SimExchange
from roottrading.services.trader.exchange_stops import EXCHANGE_STOP_REASON
from tests.trader.conftest import MIN, SYM, T0, Rig, new_engine, req
from tests.trader.test_exchange_stops import ON, resting, sells, started
from tests.trader.test_recovery import Crash, FaultyExchange

D = Decimal


async def test_a_stop_filled_while_the_trader_is_down_closes_the_cycle_on_restart(tmp_path: Path) -> None:
    engine, clock = new_engine(), SimClock(T0 - MIN)
    first = await started(tmp_path, engine, clock)
    await first.send(req("r1", stop_loss=D("19000")))
    cid = ids.cycle_id("r1")
    await first.stop()
    engine.on_trade(SYM, T0 + MIN, D("18990"))  # the fall, while nobody watches: the exchange sells
    clock.set(T0 + 2 * MIN)
    second = await started(tmp_path, engine, clock)
    try:
        c = await second.cycle(cid)
        assert c.status is CycleStatus.COMPLETED and c.close_reason == EXCHANGE_STOP_REASON
        (sold,) = [f for f in engine.my_trades(SYM, limit=100) if f.side is Side.SELL]
        assert c.exit_price == sold.price and len(sells(second)) == 1
        assert engine.balances()["BTC"].free == 0 and engine.balances()["BTC"].locked == 0
        await second.bar(18990, 19000, 18000, 18100)  # the local stop has nothing left to do
        assert len(sells(second)) == 1
    finally:
        await second.stop()


async def test_a_missing_stop_is_placed_again_on_restart(tmp_path: Path) -> None:
    engine, clock = new_engine(), SimClock(T0 - MIN)
    first = await started(tmp_path, engine, clock)
    await first.send(req("r1", stop_loss=D("19000")))
    cid = ids.cycle_id("r1")
    await first.stop()
    engine.cancel_order(SYM, ids.protective_order_id(cid, 0))  # cancelled by hand on the exchange
    clock.set(T0 + 5 * MIN)
    second = await started(tmp_path, engine, clock)
    try:
        (again,) = resting(second)
        assert again.client_order_id == ids.protective_order_id(cid, 1) and again.stop_price == D("19000")
    finally:
        await second.stop()


async def test_the_restart_settles_the_reservation_with_the_stops_pnl(tmp_path: Path) -> None:
    """The coordinator settles pockets from the cycle updates: the close the restart announces releases the
    entry's reservation with the PnL of the exchange's sale (the loss comes out of the active pocket)."""
    from roottrading.capital.ledger import PocketLedger
    from tests.trader.conftest import reserve

    engine, clock = new_engine(), SimClock(T0 - MIN)
    both = ["trader", "coordinator"]
    first = Rig(tmp_path, engine, clock, tuning=dict(ON), services=both)
    await first.start()
    await reserve(first, "res-1")
    await first.send(req("r1", stop_loss=D("19000"), reservation_id="res-1"))
    cid = ids.cycle_id("r1")
    await first.stop()
    engine.on_trade(SYM, T0 + MIN, D("18990"))
    clock.set(T0 + 2 * MIN)
    second = Rig(tmp_path, engine, clock, tuning=dict(ON), services=both)
    await second.start()
    try:
        c = await second.cycle(cid)
        assert c.close_reason == EXCHANGE_STOP_REASON and c.profit_loss < 0
        assert second.host is not None
        ledger = PocketLedger(second.host.db, clock, {"active": D(60), "buffer": D(30), "safety": D(10)})

        assert await second.host.bus.drain()  # the coordinator has handled the announced close
        r = await ledger.get("res-1")
        assert r is not None and r.status == "released"
        active = next(p for p in await ledger.pockets() if p.pocket_type == "active")
        assert active.used_value == 0 and active.current_value == D(6000) + c.profit_loss
    finally:
        await second.stop()


class CrashOnStops(FaultyExchange):
    """Dies on the first protective order, before it leaves (the entry goes through)."""

    async def place_order(self, **kw: Any) -> Any:
        if kw["type"] is OrderType.STOP_LOSS_LIMIT:
            return await super().place_order(**kw)
        return await self.inner.place_order(**kw)

    async def place_oco(self, **kw: Any) -> Any:
        if self.armed:
            self.armed, self.dead = False, True
            raise Crash("killed before the OCO left")
        return await self.inner.place_oco(**kw)


@pytest.mark.parametrize("target", [None, D("21000")])
async def test_a_stop_intent_lost_in_a_crash_is_abandoned_and_placed_anew(tmp_path: Path, target: Any) -> None:
    engine, clock = new_engine(), SimClock(T0 - MIN)
    first = Rig(tmp_path, engine, clock, tuning={**ON, "trader_exchange_stop_move_s": 10})
    await first.start(CrashOnStops(SimExchange(engine, clock), "before_send"))
    with pytest.raises(Crash):
        await first.send(req("r1", stop_loss=D("19000"), take_profit=target))
    cid = ids.cycle_id("r1")
    lost = await first.svc.orders.get(ids.protective_order_id(cid, 0))
    assert lost.status is OrderStatus.PENDING_NEW and engine.open_orders(SYM) == []
    await first.stop()
    clock.advance(31_000)  # past the re-send guard
    second = await started(tmp_path, engine, clock, trader_exchange_stop_move_s=10)
    try:
        old = await second.svc.orders.get(ids.protective_order_id(cid, 0))
        assert old.status is OrderStatus.REJECTED and "placed anew" in (old.reject_reason or "")
        now = {o.client_order_id: o for o in resting(second)}
        legs = 1 if target is None else 2
        assert len(now) == legs and ids.protective_order_id(cid, legs) in now  # the next ids, never the lost ones
        assert ids.protective_order_id(cid, 0) not in {o.client_order_id for o in engine.all_orders(SYM)}
    finally:
        await second.stop()


class CancelLost(FaultyExchange):
    """The first cancel's answer is lost (a timeout): whether the stop still rests is unknown."""

    async def place_order(self, **kw: Any) -> Any:
        return await self.inner.place_order(**kw)

    async def cancel_order(self, symbol: str, client_order_id: str) -> Any:
        if self.armed:
            self.armed = False
            raise Disconnected()
        return await self.inner.cancel_order(symbol, client_order_id)


async def test_an_exit_waits_while_the_stop_may_still_rest_then_sells_once(tmp_path: Path) -> None:
    engine, clock = new_engine(), SimClock(T0 - MIN)
    rig = Rig(tmp_path, engine, clock, tuning=dict(ON))
    await rig.start(CancelLost(SimExchange(engine, clock), "cancel"))
    rig.core.last_price[SYM] = D("20000")
    try:
        await rig.send(req("r1", stop_loss=D("19000")))
        cid = ids.cycle_id("r1")
        await rig.send(req("x1", side=Side.SELL, qty=None))  # the cancel times out: no sell sent
        c = await rig.cycle(cid)
        assert c.status is CycleStatus.ACTIVE and len(resting(rig)) == 1 and len(sells(rig)) == 1
        assert rig.core.open[cid].close_reason == "signal"  # kept: the exit is retried
        await rig.bar(20000, 20100, 19900, 20050)  # next price: the stop cancelled, then the signal exit
        c = await rig.cycle(cid)
        assert c.status is CycleStatus.COMPLETED and c.close_reason == "signal"
        assert len([f for f in engine.my_trades(SYM, limit=100) if f.side is Side.SELL]) == 1
        assert resting(rig) == []
    finally:
        await rig.stop()


class NoOco(FaultyExchange):
    async def place_order(self, **kw: Any) -> Any:
        return await self.inner.place_order(**kw)

    async def place_oco(self, **kw: Any) -> Any:
        raise OrderTypeNotSupported("no OCO endpoint through this adapter")


async def test_an_adapter_without_oco_gets_plain_stops_and_the_local_target(tmp_path: Path) -> None:
    engine, clock = new_engine(), SimClock(T0 - MIN)
    rig = Rig(tmp_path, engine, clock, tuning={**ON, "trader_exchange_stop_move_s": 0})
    await rig.start(NoOco(SimExchange(engine, clock), "no-oco"))
    rig.core.last_price[SYM] = D("20000")
    try:
        await rig.send(req("r1", stop_loss=D("19000"), take_profit=D("21000")))
        cid = ids.cycle_id("r1")
        for k in (0, 1):
            assert (await rig.svc.orders.get(ids.protective_order_id(cid, k))).status is OrderStatus.REJECTED
        (stop,) = resting(rig)  # a plain stop at once (no move interval here), never an OCO again
        assert stop.type is OrderType.STOP_LOSS_LIMIT and stop.client_order_id == ids.protective_order_id(cid, 2)
        assert SYM in rig.core._no_oco
        await rig.bar(20000, 21500, 19900, 20100)
        c = await rig.cycle(cid)
        assert c.close_reason == "take_profit" and c.exit_price == D("21000")  # the local target
        assert engine.get_order(SYM, stop.client_order_id).status is OrderStatus.CANCELED
    finally:
        await rig.stop()


async def test_a_gap_through_the_limit_while_down_leaves_it_to_the_local_stop(tmp_path: Path) -> None:
    """A fall that jumps over the stop AND its limit triggers the order but cannot fill it (a limit sell
    above the market): the restarted trader's first price cancels it and sells at market, once."""
    engine, clock = new_engine(), SimClock(T0 - MIN)
    first = await started(tmp_path, engine, clock)
    await first.send(req("r1", stop_loss=D("19000")))
    cid = ids.cycle_id("r1")
    stop_id = ids.protective_order_id(cid, 0)
    await first.stop()
    engine.on_trade(SYM, T0 + MIN, D("18700"))  # straight from 20,000 to 18,700
    assert engine.get_order(SYM, stop_id).executed_quantity == 0  # triggered, unfillable at 18,905
    clock.set(T0 + 2 * MIN)
    second = await started(tmp_path, engine, clock)
    second.core.last_price.pop(SYM)  # a restarted trader has seen no price yet
    second.i = 2
    try:
        assert (await second.cycle(cid)).status is CycleStatus.ACTIVE
        await second.bar(18700, 18750, 18600, 18650)
        c = await second.cycle(cid)
        assert c.status is CycleStatus.COMPLETED and c.close_reason == "stop_loss"
        assert c.exit_price == D(18650)  # at market after the bar: no price seen before it (as a local stop)
        assert engine.get_order(SYM, stop_id).status is OrderStatus.CANCELED
        assert len([f for f in engine.my_trades(SYM, limit=100) if f.side is Side.SELL]) == 1
    finally:
        await second.stop()
