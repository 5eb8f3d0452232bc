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
from tests.coordinator.helpers import Capture, make_host, message, sig


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
        await cb.on_signal(message(s2, attempt=2))
        assert await rows(b, "sig-2") == ["accepted"]
        assert {r.id for r in cap.requests} <= {ids.request_id_for_signal(s) for s in ("sig-1", "sig-2")}
        reservations = [r.id for r in await cb.ledger.reservations()]
        assert len(reservations) == len(set(reservations)) == 2
    finally:
        await a.stop()
        await b.stop()
