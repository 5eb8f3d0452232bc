"""Issue 18, ownership: a trader instance reconciles, watches and exits only the symbols it owns (the partitions
of `order.requests` its bus consumer holds), loads them on takeover and drops them on hand-over; and it never
re-sends an intent younger than the exchange's send timeout, even of a symbol it owns."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest

from roottrading import ids
from roottrading.bus.ownership import Ownership
from roottrading.domain import CycleStatus, OrderStatus
from roottrading.services.trader.ownership import TakeOver
from tests.trader.conftest import SYM, Rig, req, reserve
from tests.trader.test_recovery import _crash_and_restart

D = Decimal
P = 4


def owned_by_someone_else() -> Ownership:
    return Ownership("order.requests", "trader", P)  # no lease held: nothing owned


async def test_reconciliation_ignores_an_intent_of_a_symbol_owned_by_another_instance(tmp_path: Path) -> None:
    """The issue's double SELL: A's reconciliation scanned every stored order, found B's intent not yet on the
    exchange and sent it again. Now A skips it (B's symbol), and B, its owner, leaves it alone while young."""
    r, engine = await _crash_and_restart(tmp_path, "before_send", restart_after_ms=0)
    try:
        coid = ids.client_order_id("r1", "entry")
        own = owned_by_someone_else()
        TakeOver(r.core, own)
        r.clock.advance(60_000)  # old enough to be re-sent, and still inside the entry's re-send window
        r.core.resend_window_ms = 600_000
        out = await r.core.reconcile()
        assert out["others"] == 1 and out["resent"] == 0 and out["checked"] == 0
        assert engine.all_orders(SYM) == []
        assert (await r.svc.orders.get(coid)).status is OrderStatus.PENDING_NEW  # untouched, B's business
        # B's partition comes to this instance (B died): the takeover reconciles it and re-sends it, once
        await own.acquired({own.partition(SYM)}, time.monotonic(), 10.0)
        assert own.owns(SYM)
        assert [o.client_order_id for o in engine.all_orders(SYM)] == [coid]
        assert (await r.core.reconcile())["resent"] == 0
        assert [o.client_order_id for o in engine.all_orders(SYM)] == [coid]
    finally:
        await r.stop()


async def test_a_young_intent_of_an_owned_symbol_is_not_re_sent(tmp_path: Path) -> None:
    r, engine = await _crash_and_restart(tmp_path, "before_send", restart_after_ms=0)
    try:
        assert r.core.owner.owns(SYM)
        r.clock.advance(r.core.resend_min_age_ms - 1)
        out = await r.core.reconcile()
        assert out["young"] == 1 and out["resent"] == 0 and engine.all_orders(SYM) == []
    finally:
        await r.stop()


async def test_takeover_loads_the_open_cycles_and_hand_over_drops_them(rig: Rig) -> None:
    """The issue's unmanaged positions: the survivor took the dead trader's partitions but not its open cycles,
    so their exit requests were dropped ("exit request without an open position") and stops not watched."""
    await reserve(rig, "res-1")
    await rig.send(req("e1", reservation_id="res-1", stop_loss="19000"))
    cid = ids.cycle_id("e1")
    assert (await rig.cycle(cid)).status is CycleStatus.ACTIVE
    own = owned_by_someone_else()
    take = TakeOver(rig.core, own)
    async with rig.core.lock:
        assert rig.core.forget_unowned() == 1  # as after a hand-over: the cycle is no longer ours
    assert cid not in rig.core.open
    await rig.bar(20000, 20010, 18500, 18600)  # through the stop: not our symbol, nothing sold
    assert (await rig.cycle(cid)).status is CycleStatus.ACTIVE
    assert [o.side.value for o in rig.engine.all_orders(SYM)] == ["BUY"]

    await own.acquired({own.partition(SYM)}, time.monotonic(), 10.0)  # taken over: loaded at once
    assert cid in rig.core.open and take.takeovers == 1
    await rig.bar(18600, 18700, 18400, 18500)  # the stop is watched again: the exit goes out
    assert (await rig.cycle(cid)).status is CycleStatus.COMPLETED
    assert [o.side.value for o in rig.engine.all_orders(SYM)] == ["BUY", "SELL"]

    await own.releasing({own.partition(SYM)})
    assert not own.owns(SYM) and take.handovers == 1


async def test_an_expired_lease_stops_acting_before_the_hand_over_runs() -> None:
    """A process whose loop stalled past its lease must not act on the symbol even before it learns the lease
    is gone (another instance may own it by then): owns() checks the lease's deadline on the local clock."""
    own = Ownership("order.requests", "trader", P)
    p = own.partition(SYM)
    await own.acquired({p}, time.monotonic() - 20.0, 10.0)  # acquired 20 s ago, lease 10 s, never renewed
    assert not own.owns(SYM)
    await own.acquired({p}, time.monotonic(), 10.0)
    assert own.owns(SYM) and own.owned_partitions() == {p}


async def test_a_pause_asked_on_one_instance_reaches_the_others_as_the_users(rig: Rig) -> None:
    """POST /config/pause on trader A pauses A; with several instances it is also published on risk.events
    (rule "user"), and B applies it as a user's pause: a risk rule's cooldown ending does not lift it."""
    from roottrading import messages as m

    take = TakeOver(rig.core, owned_by_someone_else())  # several instances possible (a Redis bus)
    rig.svc.takeover = take
    await take.tell_others("pause")
    [ev] = rig.published(m.RISK_EVENTS)
    assert (ev.rule, ev.action) == ("user", "pause")
    other = rig.svc  # stands for instance B receiving the event
    await other.on_risk(m.Message(id="e1", topic=m.RISK_EVENTS, key="user", ts=0, payload=ev))
    assert other.core.paused and not other.risk_paused
    cooldown_over = m.RiskEvent(time=0, rule="daily_loss", action="resume", message="cooldown over")
    await other.on_risk(m.Message(id="e2", topic=m.RISK_EVENTS, key="r", ts=0, payload=cooldown_over))
    assert other.core.paused  # still the user's pause
    await take.tell_others("resume")
    ev2 = rig.published(m.RISK_EVENTS)[-1]
    await other.on_risk(m.Message(id="e3", topic=m.RISK_EVENTS, key="resume", ts=0, payload=ev2))
    assert not other.core.paused


async def test_a_takeover_with_the_kill_switch_on_closes_the_positions_taken(rig: Rig) -> None:
    """The dead owner may have died before its kill switch closed everything: the new owner, killed too (the
    switch is stored and broadcast), sells the ACTIVE positions it takes over."""
    await reserve(rig, "res-1")
    await rig.send(req("e1", reservation_id="res-1"))
    cid = ids.cycle_id("e1")
    own = owned_by_someone_else()
    TakeOver(rig.core, own)
    async with rig.core.lock:
        rig.core.forget_unowned()
    rig.core.paused = rig.core.killed = True
    await own.acquired({own.partition(SYM)}, time.monotonic(), 10.0)
    assert (await rig.cycle(cid)).close_reason == "kill_switch"
    assert [o.side.value for o in rig.engine.all_orders(SYM)] == ["BUY", "SELL"]


async def test_a_manual_close_on_the_wrong_instance_says_which_one_to_ask(rig: Rig) -> None:
    await reserve(rig, "res-1")
    await rig.send(req("e1", reservation_id="res-1"))
    TakeOver(rig.core, owned_by_someone_else())
    async with rig.core.lock:
        rig.core.forget_unowned()
    with pytest.raises(ValueError, match="managed by the trader instance that owns BTCUSDT"):
        await rig.core.close(ids.cycle_id("e1"))
