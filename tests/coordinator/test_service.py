"""The coordinator in a host with the risk service and the real pocket ledger (SQLite)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from roottrading import messages as m
from roottrading.clock import SimClock
from roottrading.domain import CycleStatus, Side, SignalStrength, TradeCycle
from roottrading.runtime.http import build_app
from roottrading.store import CycleRepo
from tests.coordinator.helpers import T0, Capture, make_host, message, sig

D = Decimal


async def decisions(host: Any, signal_id: str) -> list[dict[str, Any]]:
    return await host.services["coordinator"].decisions.query(signal_id=signal_id)  # type: ignore[no-any-return]


async def active(host: Any) -> Decimal:
    return {p.pocket_type: p for p in await host.services["coordinator"].ledger.pockets()}["active"].available_value


async def test_entry_is_sized_risk_checked_reserved_and_sent_once(tmp_path: Path) -> None:
    host = await make_host(tmp_path, ["risk", "coordinator"])
    cap = Capture()
    await host.bus.subscribe(m.ORDER_REQUESTS, "test", cap)
    try:
        co: Any = host.services["coordinator"]
        assert co.risk.mode == "in-process"
        s = sig("sig-1", price=100.0, stop=99.0)  # risk 1% of 10000 over 1.0 = 100 units = 10000 quote
        await co.on_signal(message(s))
        await co.on_signal(message(s, attempt=2))  # redelivery
        assert await host.bus.drain(5)
        assert len(cap.requests) == 1
        req = cap.requests[0]
        # risk rule max_position_size (20% of equity) shrinks 10000 quote to 2000
        assert req.side is Side.BUY and req.quantity == D(20) and req.stop_loss == D(99)
        assert req.reservation_id and req.signal_id == "sig-1" and req.id.startswith("req-")
        rows = await decisions(host, "sig-1")
        assert [r["decision"] for r in rows] == ["accepted"] and "shrunk" in rows[0]["reason"]
        assert co.counts["duplicates"] == 1
        assert len(await co.ledger.reservations()) == 1
        assert await active(host) == D(6000) - D("2012.01")  # notional x 1.001 fee x 1.005 slippage buffers
    finally:
        await host.stop()


async def test_filters_reject_with_reasons(tmp_path: Path) -> None:
    host = await make_host(tmp_path, ["risk", "coordinator"], blocked_regimes=["TREND_DOWN"], cooldown_s=600)
    try:
        co: Any = host.services["coordinator"]
        await co.on_signal(message(sig("weak", strength=SignalStrength.WEAK)))
        await co.on_signal(message(sig("bear", regime="TREND_DOWN/HIGH_VOL")))
        await co.on_signal(message(sig("ok1")))
        await co.on_signal(message(sig("cool", time=T0 + 60_000)))
        co.cfg.cooldown_s = 0
        await co.on_signal(message(sig("open", time=T0 + 60_000)))
        await co.on_signal(message(sig("other", strategy="s2")))  # another strategy may open
        reasons = {sid: (await decisions(host, sid))[0] for sid in ("weak", "bear", "ok1", "cool", "open", "other")}
        assert "strength WEAK below threshold MODERATE" in reasons["weak"]["reason"]
        assert "regime TREND_DOWN/HIGH_VOL blocks" in reasons["bear"]["reason"]
        assert reasons["ok1"]["decision"] == "accepted" and reasons["other"]["decision"] == "accepted"
        assert reasons["cool"]["reason"].startswith("cooldown")
        assert "already open" in reasons["open"]["reason"]
        assert all(reasons[k]["decision"] == "rejected" for k in ("weak", "bear", "cool", "open"))
        assert len(await co.ledger.reservations()) == 2  # rejected signals reserve nothing
    finally:
        await host.stop()


async def test_exit_for_open_cycle_and_sell_without_position(tmp_path: Path) -> None:
    host = await make_host(tmp_path, ["risk", "coordinator"], min_strength="VERY_STRONG")
    cap = Capture()
    await host.bus.subscribe(m.ORDER_REQUESTS, "test", cap)
    try:
        co: Any = host.services["coordinator"]
        await co.on_signal(message(sig("sell-0", Side.SELL)))
        assert "no open position" in (await decisions(host, "sell-0"))[0]["reason"]
        await CycleRepo(host.db).save(
            TradeCycle(
                id="cy1",
                symbol="BTCUSDT",
                strategy="s1",
                side=Side.BUY,
                status=CycleStatus.ACTIVE,
                created_at=T0,
                updated_at=T0,
                quantity=D("1.5"),
                entry_price=D(100),
            )
        )
        # exits skip entry filters: this WEAK signal is below min_strength VERY_STRONG
        await co.on_signal(message(sig("sell-1", Side.SELL, strength=SignalStrength.WEAK)))
        assert await host.bus.drain(5)
        assert len(cap.requests) == 1 and cap.requests[0].side is Side.SELL and cap.requests[0].quantity == D("1.5")
        assert (await decisions(host, "sell-1"))[0]["decision"] == "accepted"
    finally:
        await host.stop()


async def test_risk_rejection_reserves_nothing(tmp_path: Path) -> None:
    host = await make_host(
        tmp_path, ["risk", "coordinator"], rules="version: 1\nrules:\n  symbol_blacklist: {symbols: [BTCUSDT]}\n"
    )
    try:
        co: Any = host.services["coordinator"]
        await co.on_signal(message(sig("b1")))
        row = (await decisions(host, "b1"))[0]
        assert row["decision"] == "rejected" and "symbol_blacklist: BTCUSDT is blacklisted" in row["reason"]
        assert await co.ledger.reservations() == [] and await active(host) == D(6000)
    finally:
        await host.stop()


async def test_funds_released_when_the_order_cannot_be_sent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = await make_host(tmp_path, ["risk", "coordinator"], breaker_failures=2)
    try:
        co: Any = host.services["coordinator"]
        real = host.ctx.publish

        async def broken(topic: str, payload: Any, **kw: Any) -> str:
            if topic == m.ORDER_REQUESTS:
                raise ConnectionError("bus down")
            return await real(topic, payload, **kw)

        monkeypatch.setattr(host.ctx, "publish", broken)
        for i in range(3):
            await co.on_signal(message(sig(f"f{i}", strategy=f"s{i}")))
        rows = [(await decisions(host, f"f{i}"))[0] for i in range(3)]
        assert [r["decision"] for r in rows] == ["failed", "failed", "rejected"]
        assert "bus unavailable" in rows[0]["reason"] and rows[2]["reason"] == "circuit open: bus"
        assert all(r.status == "released" for r in await co.ledger.reservations())
        assert await active(host) == D(6000)
        assert (await co.health()).status == "degraded"
    finally:
        await host.stop()


async def test_risk_over_http_unreachable_opens_the_circuit_then_probes(tmp_path: Path) -> None:
    clock = SimClock(T0)
    host = await make_host(
        tmp_path,
        ["coordinator"],
        clock=clock,
        risk_url="http://127.0.0.1:9",
        risk_timeout_s=0.5,
        breaker_failures=2,
        breaker_reset_s=30,
    )
    try:
        co: Any = host.services["coordinator"]
        assert co.risk.mode == "http"
        for i in range(3):
            await co.on_signal(message(sig(f"h{i}", strategy=f"s{i}")))
        rows = [(await decisions(host, f"h{i}"))[0] for i in range(3)]
        assert [r["decision"] for r in rows] == ["failed", "failed", "rejected"]
        assert "risk unavailable" in rows[0]["reason"] and rows[2]["reason"] == "circuit open: risk"
        assert co.breakers["risk"].state == "open" and await co.ledger.reservations() == []
        clock.advance(30_000)  # half-open: one probe goes to the (still dead) service
        await co.on_signal(message(sig("h3", strategy="s3")))
        assert "risk unavailable" in (await decisions(host, "h3"))[0]["reason"]
        assert co.breakers["risk"].state == "open"
        app = build_app(host)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            got = (await c.get("/api/coordinator/decisions", params={"signal_id": "h2"})).json()
            assert got[0]["reason"] == "circuit open: risk"
            h = (await c.get("/api/coordinator/health")).json()
            assert h["breakers"]["risk"]["state"] == "open" and h["risk_mode"] == "http"
    finally:
        await host.stop()
