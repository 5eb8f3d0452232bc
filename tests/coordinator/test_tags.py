"""Strategy tags (issue 19): the coordinator carries a signal's tag into its order request and its stored
decision, for entries and exits; the cycle store keeps the entry and exit tags."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from roottrading import messages as m
from roottrading.domain import CycleStatus, Side, TradeCycle
from roottrading.store import CycleRepo
from tests.coordinator.helpers import T0, Capture, make_host, message, sig


async def test_entry_and_exit_requests_and_decisions_carry_the_tag(tmp_path: Path) -> None:
    host = await make_host(tmp_path, ["risk", "coordinator"])
    cap = Capture()
    await host.bus.subscribe(m.ORDER_REQUESTS, "test", cap)
    try:
        co: Any = host.services["coordinator"]
        await co.on_signal(message(msgspec.structs.replace(sig("in-1", stop=99.0), tag="breakout")))
        await CycleRepo(host.db).save(
            TradeCycle(
                id="cy1",
                symbol="BTCUSDT",
                strategy="s1",
                side=Side.BUY,
                status=CycleStatus.ACTIVE,
                created_at=T0,
                updated_at=T0,
                quantity=Decimal("1.5"),
                entry_price=Decimal(100),
                entry_tag="breakout",
            )
        )
        await co.on_signal(message(msgspec.structs.replace(sig("out-1", Side.SELL), tag="rsi_exit")))
        assert await host.bus.drain(5)
        assert [(r.side, r.tag) for r in cap.requests] == [(Side.BUY, "breakout"), (Side.SELL, "rsi_exit")]
        entry = (await co.decisions.query(signal_id="in-1"))[0]
        exit_ = (await co.decisions.query(signal_id="out-1"))[0]
        assert entry["decision"] == "accepted" and entry["details"]["tag"] == "breakout"
        assert entry["details"]["request"]["tag"] == "breakout"
        assert exit_["decision"] == "accepted" and exit_["details"]["tag"] == "rsi_exit"
        stored = await CycleRepo(host.db).get("cy1")
        assert stored is not None and stored.entry_tag == "breakout" and stored.exit_tag is None
    finally:
        await host.stop()


async def test_untagged_signal_has_no_tag_anywhere(tmp_path: Path) -> None:
    host = await make_host(tmp_path, ["risk", "coordinator"])
    cap = Capture()
    await host.bus.subscribe(m.ORDER_REQUESTS, "test", cap)
    try:
        co: Any = host.services["coordinator"]
        await co.on_signal(message(sig("in-2", stop=99.0)))
        assert await host.bus.drain(5)
        assert cap.requests[0].tag is None
        assert (await co.decisions.query(signal_id="in-2"))[0]["details"]["tag"] is None
    finally:
        await host.stop()
