"""A signal counts as decided only once its decision is stored (issue 17, item 6).

Before the fix the coordinator noted the signal as decided in memory while it built the decision row,
before the reservation/decision transaction: an unexpected error in that transaction, then the bus's
redelivery, answered "already decided; redelivery ignored" with nothing stored and nothing sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from roottrading import messages as m
from roottrading.domain import Side
from tests.coordinator.helpers import T0, Capture, make_host, message, sig


class _Boom(Exception):
    """An error nobody expects from the ledger (not one of LEDGER_ERRORS)."""


async def test_redelivery_after_an_unexpected_error_in_the_reservation_is_decided_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = await make_host(tmp_path, ["risk", "coordinator"])
    cap = Capture()
    await host.bus.subscribe(m.ORDER_REQUESTS, "test", cap)
    try:
        co: Any = host.services["coordinator"]
        real_reserve = co.ledger.reserve
        calls = 0

        async def reserve_once_broken(*args: Any, **kw: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise _Boom("disk hiccup inside the transaction")
            return await real_reserve(*args, **kw)

        monkeypatch.setattr(co.ledger, "reserve", reserve_once_broken)
        s = sig("sig-boom", price=100.0, stop=99.0)
        with pytest.raises(_Boom):  # the bus sees the failure and redelivers
            await co.on_signal(message(s))
        assert co.decided.get(s.id) is None, "noted as decided although nothing was stored"
        assert await co.decisions.query(signal_id=s.id) == []

        await co.on_signal(message(s, attempt=2))
        assert await host.bus.drain(5)
        assert len(cap.requests) == 1 and cap.requests[0].signal_id == s.id
        rows = await co.decisions.query(signal_id=s.id)
        assert [r["decision"] for r in rows] == ["accepted"]
        assert co.counts.get("accepted") == 1 and co.counts.get("duplicates", 0) == 0
    finally:
        await host.stop()


async def test_a_failed_decision_write_is_not_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rejection whose row could not be written is decided again on redelivery (and then stored)."""
    host = await make_host(tmp_path, ["risk", "coordinator"])
    try:
        co: Any = host.services["coordinator"]
        real_add = co.decisions.add
        calls = 0

        async def add_once_broken(**row: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise _Boom("write failed")
            return await real_add(**row)

        monkeypatch.setattr(co.decisions, "add", add_once_broken)
        s = sig("sig-sell", side=Side.SELL)  # no open position: rejected
        with pytest.raises(_Boom):
            await co.on_signal(message(s))
        assert co.decided.get(s.id) is None
        await co.on_signal(message(s, attempt=2))
        rows = await co.decisions.query(signal_id=s.id)
        assert [r["decision"] for r in rows] == ["rejected"]
    finally:
        await host.stop()


async def test_entry_cooldown_survives_a_restart(tmp_path: Path) -> None:
    """Issue 17 item 14: the cooldown between entries lived only in memory; a restart forgot it."""
    host = await make_host(tmp_path, ["risk", "coordinator"], cooldown_s=600)
    try:
        await host.services["coordinator"].on_signal(message(sig("e1", price=100.0, stop=99.0)))
        assert [r["decision"] for r in await host.services["coordinator"].decisions.query(signal_id="e1")] == [
            "accepted"
        ]
    finally:
        await host.stop()
    host = await make_host(tmp_path, ["risk", "coordinator"], cooldown_s=600, allow_multiple_cycles=True)
    try:
        co: Any = host.services["coordinator"]
        await co.on_signal(message(sig("e2", price=100.0, stop=99.0, time=T0 + 60_000)))
        rows = await co.decisions.query(signal_id="e2")
        assert [r["decision"] for r in rows] == ["rejected"] and rows[0]["reason"].startswith("cooldown")
    finally:
        await host.stop()
