"""Issue 18: two coordinators on one database never decide a signal twice.

A takes a signal's partition first and decides it; B holds the partition after A (takeover after A's death, the
signal redelivered because A died before acknowledging it). B reloads what was decided when it takes over and
finds the decision; and even without that (both deciding at once), the database keeps one decision per signal
and the reservation, keyed by the signal, is made once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from roottrading import ids
from roottrading import messages as m
from roottrading.domain import CycleStatus, Side, TradeCycle
from roottrading.services.coordinator.service import reservation_id_for_signal
from tests.coordinator.helpers import T0, Capture, make_host, message, sig


async def rows(host: Any, signal_id: str) -> list[str]:
    return [r["decision"] for r in await host.services["coordinator"].decisions.query(signal_id=signal_id)]


async def test_takeover_finds_the_previous_owners_decision(tmp_path: Path) -> None:
    a = await make_host(tmp_path, ["risk", "coordinator"])
    b = await make_host(tmp_path, ["risk", "coordinator"])
    cap = Capture()
    await b.bus.subscribe(m.ORDER_REQUESTS, "test", cap)
    try:
        ca: Any = a.services["coordinator"]
        cb: Any = b.services["coordinator"]
        s1, s2 = sig("sig-1", price=100.0, stop=99.0), sig("sig-2", price=100.0, stop=99.0, strategy="s2")
        await ca.on_signal(message(s1))  # A decides, then dies before acknowledging: sig-1 is redelivered to B
        await ca.on_signal(message(s2))
        assert await rows(a, "sig-1") == ["accepted"]

        await cb.takeover.acquired({0})  # B takes the partition over: decisions reloaded before reading
        await cb.on_signal(message(s1, attempt=2))
        assert cb.counts["duplicates"] == 1 and cb.counts["accepted"] == 0
        assert await rows(b, "sig-1") == ["accepted"]
        # an accepted request whose publication is unknown may be published again: same request id (the trader
        # keys the cycle by it), never a new one
        assert {r.id for r in cap.requests} <= {ids.request_id_for_signal("sig-1")}

        # no takeover (both instances deciding at once, a stalled lease): B's memory claims to cover the signal's
        # time and knows nothing of sig-2, so B decides it again; the database keeps one decision
        cb.decided = type(cb.decided)()
        cb.decided.known_since = 0
        cb.pending = type(cb.pending)()  # nor of sig-2's entry waiting for its cycle
        await cb.on_signal(message(s2, attempt=2))
        assert await rows(b, "sig-2") == ["accepted"]
        assert {r.id for r in cap.requests} <= {ids.request_id_for_signal(s) for s in ("sig-1", "sig-2")}
        reservations = [r.id for r in await cb.ledger.reservations()]
        assert len(reservations) == len(set(reservations)) == 2
    finally:
        await a.stop()
        await b.stop()


async def test_takeover_counts_the_previous_owners_accepted_entry_as_open(tmp_path: Path) -> None:
    """A accepts (and reserves) an entry, then dies before the trader opened its cycle. B takes the partition
    over: that entry counts as open, so a new BUY signal for the same symbol/strategy is not entered twice; an
    accepted entry whose cycle the trader already opened and closed does not count."""
    a = await make_host(tmp_path, ["risk", "coordinator"])
    b = await make_host(tmp_path, ["risk", "coordinator"])
    try:
        ca: Any = a.services["coordinator"]
        cb: Any = b.services["coordinator"]
        await ca.on_signal(message(sig("sig-1", price=100.0, stop=99.0)))
        await ca.on_signal(message(sig("sig-2", price=100.0, stop=99.0, strategy="s2")))
        assert await rows(a, "sig-1") == await rows(a, "sig-2") == ["accepted"]
        closed = TradeCycle(
            id=ids.cycle_id(ids.request_id_for_signal("sig-2")),
            symbol="BTCUSDT",
            strategy="s2",
            side=Side.BUY,
            status=CycleStatus.COMPLETED,
            created_at=T0,
            updated_at=T0,
        )
        await cb.cycles.save(closed)  # sig-2's cycle was opened and closed already (B never saw its updates)

        await cb.takeover.acquired({0})
        await cb.on_signal(message(sig("sig-3", price=100.0, stop=99.0)))
        assert await rows(b, "sig-3") == ["rejected"]
        await cb.on_signal(message(sig("sig-4", price=100.0, stop=99.0, strategy="s2")))
        assert await rows(b, "sig-4") == ["accepted"]
        reservations = {r.id for r in await cb.ledger.reservations()}
        assert reservation_id_for_signal("sig-3") not in reservations
    finally:
        await a.stop()
        await b.stop()


async def test_restart_counts_an_accepted_entry_not_opened_yet(tmp_path: Path) -> None:
    """The same after a restart of the only coordinator: its pending entries come from the store at start."""
    a = await make_host(tmp_path, ["risk", "coordinator"])
    try:
        await a.services["coordinator"].on_signal(message(sig("sig-1", price=100.0, stop=99.0)))
    finally:
        await a.stop()
    b = await make_host(tmp_path, ["risk", "coordinator"])
    try:
        await b.services["coordinator"].on_signal(message(sig("sig-2", price=100.0, stop=99.0)))
        assert await rows(b, "sig-2") == ["rejected"]
    finally:
        await b.stop()
