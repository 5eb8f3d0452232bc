"""The coordinator's fast path keeps its guarantees: the decision is stored (with the reservation, in one
transaction) before the request is published, redelivery is answered from memory and from the store, a
request lost in a crash between commit and publish is published again after a restart, and the open-cycle
view follows `cycle.updates`."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from roottrading import messages as m
from roottrading.clock import SimClock
from roottrading.domain import CycleStatus, Side, TradeCycle
from roottrading.services.coordinator.memory import DecidedSignals, OpenCycles
from roottrading.store import DecisionRepo
from tests.coordinator.helpers import T0, Capture, make_host, message, sig

D = Decimal


class Crash(BaseException):
    """A process dying in the middle of a handler (not an error the coordinator handles)."""


def cyc(cid: str, status: CycleStatus, strategy: str = "s1") -> TradeCycle:
    return TradeCycle(
        id=cid,
        symbol="BTCUSDT",
        strategy=strategy,
        side=Side.BUY,
        status=status,
        created_at=T0,
        updated_at=T0,
        quantity=D(1),
        entry_price=D(100),
    )


async def test_decision_and_reservation_are_stored_before_the_request_is_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = await make_host(tmp_path, ["risk", "coordinator"])
    try:
        co: Any = host.services["coordinator"]
        real, seen = host.ctx.publish, []

        async def spy(topic: str, payload: Any, **kw: Any) -> str:
            if topic == m.ORDER_REQUESTS:  # what a crash right now would leave in the store
                rows = await co.decisions.query(signal_id=payload.signal_id)
                seen.append(([r["decision"] for r in rows], await co.ledger.get(payload.reservation_id)))
            return await real(topic, payload, **kw)

        monkeypatch.setattr(host.ctx, "publish", spy)
        await co.on_signal(message(sig("a1", stop=99.0)))
        assert len(seen) == 1
        decided, reservation = seen[0]
        assert decided == ["accepted"] and reservation is not None and reservation.status == "reserved"
        row = (await co.decisions.query(signal_id="a1"))[0]
        assert row["details"]["request"]["reservation_id"] == reservation.id  # enough to publish it again
        assert co.counts["accepted"] == 1
    finally:
        await host.stop()


async def test_request_lost_in_a_crash_is_published_again_after_restart_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = SimClock(T0)
    host = await make_host(tmp_path, ["risk", "coordinator"], clock=clock)
    co: Any = host.services["coordinator"]

    async def dies(topic: str, payload: Any, **kw: Any) -> str:
        raise Crash

    monkeypatch.setattr(host.ctx, "publish", dies)
    with pytest.raises(Crash):
        await co.on_signal(message(sig("c1", stop=99.0)))
    monkeypatch.undo()
    await host.stop()

    host = await make_host(tmp_path, ["risk", "coordinator"], clock=clock)
    cap = Capture()
    await host.bus.subscribe(m.ORDER_REQUESTS, "test", cap)
    try:
        co = host.services["coordinator"]
        for attempt in (2, 3):  # redelivered twice: published again once, nothing decided or reserved again
            await co.on_signal(message(sig("c1", stop=99.0), attempt=attempt))
        assert await host.bus.drain(5)
        assert len(cap.requests) == 1 and cap.requests[0].signal_id == "c1" and cap.requests[0].quantity > 0
        assert [r["decision"] for r in await co.decisions.query(signal_id="c1")] == ["accepted"]
        assert len(await co.ledger.reservations()) == 1 and co.counts["duplicates"] == 2
    finally:
        await host.stop()


async def test_old_signal_is_checked_against_the_store(tmp_path: Path) -> None:
    host = await make_host(tmp_path, ["risk", "coordinator"])
    cap = Capture()
    await host.bus.subscribe(m.ORDER_REQUESTS, "test", cap)
    try:
        co: Any = host.services["coordinator"]
        old = T0 - 3 * 86_400_000  # before what the coordinator loaded at start
        await DecisionRepo(host.db).add(
            signal_id="old", time=old, symbol="BTCUSDT", strategy="s1", decision="rejected", reason="r"
        )
        await co.on_signal(message(sig("old", time=old)))
        assert await host.bus.drain(5)
        assert cap.requests == [] and co.counts["duplicates"] == 1
    finally:
        await host.stop()


async def test_open_cycle_filter_follows_cycle_updates(tmp_path: Path) -> None:
    host = await make_host(tmp_path, ["risk", "coordinator"])
    try:
        co: Any = host.services["coordinator"]

        async def update(c: TradeCycle) -> None:
            await co.on_cycle(m.Message(id=c.id + c.status.value, topic=m.CYCLE_UPDATES, key=None, ts=0, payload=c))

        await update(cyc("x1", CycleStatus.ACTIVE))
        await co.on_signal(message(sig("o1")))
        assert "already open" in (await co.decisions.query(signal_id="o1"))[0]["reason"]
        await update(cyc("x1", CycleStatus.COMPLETED))
        await update(cyc("x1", CycleStatus.ACTIVE))  # late, older update: must not reopen it
        await co.on_signal(message(sig("o2")))
        assert (await co.decisions.query(signal_id="o2"))[0]["decision"] == "accepted"
    finally:
        await host.stop()


def test_memory_views_bounded_and_fall_back_when_forgotten() -> None:
    d = DecidedSignals(max_size=3)
    d.load(1_000, {"a": "accepted", "b": "rejected"})
    assert d.get("a") == "accepted" and "a" in d.unsure and not d.covers(1_000)
    assert d.covers(1_000 + 600_000)
    for i, t in enumerate((5_000, 6_000, 7_000)):
        d.note(f"n{i}", "rejected", t)
    assert d.get("a") is None and d.get("b") is None  # forgotten...
    assert not d.covers(1_000 + 600_000) and d.known_since is not None and d.known_since > 1_000  # ...so: store
    v = OpenCycles(max_closed=1)
    v.load([cyc("p", CycleStatus.ACTIVE), cyc("q", CycleStatus.WAITING_ENTRY, "s2")])
    assert v.count("BTCUSDT", "s1") == 1 and v.count("BTCUSDT", "s2") == 1
    v.update(cyc("p", CycleStatus.FAILED))
    assert v.count("BTCUSDT", "s1") == 0 and v.seen("p")


async def test_entry_sized_from_a_stale_pocket_view_is_sized_again_from_the_store(tmp_path: Path) -> None:
    """Sizing reads the ledger's view of the pockets (no database read on the hot path). Another writer takes
    most of the funds; the view does not know. The reservation refuses, and the coordinator sizes the entry
    again from the store instead of rejecting it."""
    from roottrading.capital import PocketLedger

    host = await make_host(tmp_path, ["risk", "coordinator"], pocket_view_s=3600)
    try:
        co: Any = host.services["coordinator"]
        cap = Capture()
        await host.bus.subscribe(m.ORDER_REQUESTS, "t", cap)
        await co.on_signal(message(sig("v1", stop=99.0)))  # reads the pockets: the view is now fresh
        view = {p.pocket_type: p for p in await co.ledger.pockets(max_age_s=3600)}["active"]
        other = PocketLedger(host.db, host.clock, dict(host.settings.pocket_config))
        left = D(50)
        await other.reserve("elsewhere", view.available_value - left)  # the view still shows the funds
        await co.on_signal(message(sig("v2", stop=99.0, strategy="s2")))
        assert await host.bus.drain(5)
        assert co.counts["accepted"] == 2 and co.counts["rejected"] == 0
        second = [r for r in cap.requests if r.signal_id == "v2"]
        assert len(second) == 1
        res = await co.ledger.get(second[0].reservation_id)
        assert res is not None and res.amount <= left  # sized to what the store really had
        decided = [r["decision"] for r in await co.decisions.query(signal_id="v2")]
        assert decided == ["accepted"]
    finally:
        await host.stop()
