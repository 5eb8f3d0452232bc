"""Crash safety: stop the trader between 'intent stored' and 'sent', and between 'sent' and 'acknowledged';
restart over the same database and the same simulated exchange: no order lost, none doubled."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from roottrading import ids
from roottrading import messages as m
from roottrading.clock import SimClock
from roottrading.domain import CycleStatus, OrderStatus, OrderType
from roottrading.exchange.errors import Disconnected
from roottrading.exchange.sim import SimExchange
from tests.trader.conftest import MIN, SYM, T0, Rig, new_engine, req, reserve

D = Decimal


class Crash(Exception):
    """Stands for the process dying: the trader does not catch it."""


class FaultyExchange:
    """Wraps a SimExchange. mode: before_send | after_send (crash) | disconnect_after_send (timeout).
    Once 'dead', updates pushed by the engine are lost, as they would be with the process or socket gone."""

    def __init__(self, inner: SimExchange, mode: str) -> None:
        self.inner, self.mode, self.dead, self.armed = inner, mode, False, True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def subscribe_updates(self, cb: Any) -> Any:
        def relay(u: Any) -> Any:
            return None if self.dead else cb(u)

        return self.inner.subscribe_updates(relay)

    async def place_order(self, **kw: Any) -> Any:
        if not self.armed:
            return await self.inner.place_order(**kw)
        self.armed = False
        self.dead = True
        if self.mode == "before_send":
            raise Crash("killed before the request left")
        await self.inner.place_order(**kw)
        if self.mode == "after_send":
            raise Crash("killed before the answer arrived")
        self.dead = False
        raise Disconnected()


async def _crash_and_restart(tmp_path: Path, mode: str, restart_after_ms: int = 31_000) -> tuple[Rig, Any]:
    engine, clock = new_engine(), SimClock(T0 - MIN)
    first = Rig(tmp_path, engine, clock)
    await first.start(FaultyExchange(SimExchange(engine, clock), mode))
    await reserve(first, "res-1")
    with pytest.raises(Crash):
        await first.send(req("r1", reservation_id="res-1"))
    coid = ids.client_order_id("r1", "entry")
    stored = await first.svc.orders.get(coid)
    assert stored.status is OrderStatus.PENDING_NEW  # the intent was stored before the send
    await first.stop()
    clock.advance(restart_after_ms)  # the restart comes later than any send still in flight
    second = Rig(tmp_path, engine, clock)
    await second.start()
    return second, engine


async def test_an_intent_younger_than_a_send_in_flight_is_not_re_sent(tmp_path: Path) -> None:
    """Issue 18: trader A's reconciliation found trader B's exit intent 47 ms old, not yet on the exchange,
    and sent it again: both SELLs filled. An intent is re-sent only once older than any send in flight."""
    r, engine = await _crash_and_restart(tmp_path, "before_send", restart_after_ms=0)
    try:
        assert engine.all_orders(SYM) == []  # 0 ms old at the restart's reconciliation: left alone
        guard = r.core.resend_min_age_ms
        assert guard == 11_000  # the default send timeout (10 s: an exchange that does not say) + 1 s
        r.clock.advance(guard - 2)  # still younger than the send timeout on the platform clock
        out = await r.core.reconcile()
        assert out["resent"] == 0 and out["young"] == 1 and engine.all_orders(SYM) == []
        r.clock.advance(2)
        assert (await r.core.reconcile())["resent"] == 1
        assert [o.client_order_id for o in engine.all_orders(SYM)] == [ids.client_order_id("r1", "entry")]
    finally:
        await r.stop()


async def test_crash_between_intent_and_send_resends_with_the_same_client_id(tmp_path: Path) -> None:
    r, engine = await _crash_and_restart(tmp_path, "before_send")
    try:
        orders = engine.all_orders(SYM)
        assert [o.client_order_id for o in orders] == [ids.client_order_id("r1", "entry")]
        c = await r.cycle(ids.cycle_id("r1"))
        assert c.status is CycleStatus.ACTIVE and c.quantity == D("0.00999")
        await r.send(req("r1"))  # the bus redelivers the request after the restart
        assert len(engine.all_orders(SYM)) == 1
    finally:
        await r.stop()


async def test_crash_between_send_and_ack_adopts_the_order_and_its_fills(tmp_path: Path) -> None:
    r, engine = await _crash_and_restart(tmp_path, "after_send")
    try:
        assert len(engine.all_orders(SYM)) == 1
        c = await r.cycle(ids.cycle_id("r1"))
        assert c.status is CycleStatus.ACTIVE and c.entry_price == D(20000) and c.quantity == D("0.00999")
        fills = await r.svc.orders.fills()
        assert [f["trade_id"] for f in fills] == ["1"]
        assert [f.trade_id for f in r.published(m.TRADE_EXECUTIONS)] == ["1"]  # missed fill announced once
        assert r.core.stats["resent"] == 0
    finally:
        await r.stop()


async def test_timeout_leaves_the_outcome_unknown_until_queried(tmp_path: Path) -> None:
    engine, clock = new_engine(), SimClock(T0 - MIN)
    r = Rig(tmp_path, engine, clock)
    await r.start(FaultyExchange(SimExchange(engine, clock), "disconnect_after_send"))
    try:
        await r.send(req("r1"))
        cid = ids.cycle_id("r1")
        assert (await r.cycle(cid)).status is CycleStatus.INITIATING
        out = await r.core.reconcile()
        assert out["adopted"] == 1 and out["resent"] == 0
        assert (await r.cycle(cid)).status is CycleStatus.ACTIVE
        assert len(engine.all_orders(SYM)) == 1
    finally:
        await r.stop()


async def test_stale_entry_intent_is_not_resent(tmp_path: Path) -> None:
    engine, clock = new_engine(), SimClock(T0 - MIN)
    first = Rig(tmp_path, engine, clock)
    await first.start(FaultyExchange(SimExchange(engine, clock), "before_send"))
    with pytest.raises(Crash):
        await first.send(req("r1"))
    await first.stop()
    clock.advance(10 * MIN)  # down for 10 minutes: a market entry that old is not sent any more
    second = Rig(tmp_path, engine, clock)
    await second.start()
    try:
        c = await second.cycle(ids.cycle_id("r1"))
        assert c.status is CycleStatus.FAILED and "not sent" in c.close_reason
        assert engine.all_orders(SYM) == []
    finally:
        await second.stop()


async def test_entry_fill_missed_while_down_is_applied_on_restart(tmp_path: Path) -> None:
    engine, clock = new_engine(), SimClock(T0 - MIN)
    first = Rig(tmp_path, engine, clock)
    await first.start()
    await first.send(req("r1", type=OrderType.LIMIT, price="19500"))
    await first.stop()
    engine.on_trade(SYM, T0, D(19400))  # the limit fills while the trader is down
    second = Rig(tmp_path, engine, clock)
    await second.start()
    try:
        c = await second.cycle(ids.cycle_id("r1"))
        assert c.status is CycleStatus.ACTIVE and c.entry_price == D(19500)
    finally:
        await second.stop()
