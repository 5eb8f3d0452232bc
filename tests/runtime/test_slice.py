"""The thin end-to-end slice: recorded candles -> bus -> strategy -> signal -> simulated fill -> store -> API."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import httpx

from roottrading.clock import SimClock
from roottrading.config import load_settings
from roottrading.runtime import Host, Wiring
from roottrading.runtime.http import build_app
from tests.runtime.helpers import lean_hourly_btcusdt

TOKEN = "test-token-123"
# the full signal-to-trade pipeline, with replayed candles standing in for the gateway
# A replay as fast as possible (replay_speed 0) moves market time ahead of the pipeline: every signal is a
# backlog, so the coordinator's stale-signal limit is off here (max_signal_age_s 0).
PIPELINE = ["logger", "portfolio", "pnl", "risk", "trader", "coordinator", "analyzer", "replay"]


async def test_recorded_candles_become_trades_visible_through_the_api(tmp_path: Path) -> None:
    candles = lean_hourly_btcusdt()
    settings = load_settings(
        symbols="BTCUSDT",
        interval="1h",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/s.db",
        api_token=TOKEN,
        data_dir=tmp_path,
        strategies="ema_cross,rsi_cross,macd_crossover",
    )
    host = Host(
        settings,
        PIPELINE,
        clock=SimClock(),
        wiring=Wiring(replay_candles=candles, coordinator={"cooldown_s": 0, "max_signal_age_s": 0}),
    )
    await host.start()
    try:
        replay = host.services["replay"]
        await asyncio.wait_for(replay.done.wait(), 30)  # type: ignore[attr-defined]
        assert await host.bus.drain(30)
        app = build_app(host)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            health = (await client.get("/api/health")).json()
            assert health["status"] == "ok", {k: v["status"] for k, v in health["components"].items()}
            signals = (await client.get("/api/analyzer/signals", params={"limit": 1000})).json()
            assert signals, "classic strategies must fire on 120 real hourly candles"
            decisions = (await client.get("/api/coordinator/decisions", params={"limit": 1000})).json()
            assert {d["signal_id"] for d in decisions} == {s["id"] for s in signals}  # every signal explained
            accepted = [d for d in decisions if d["decision"] == "accepted"]
            assert accepted
            cycles = (await client.get("/api/trader/cycles", params={"limit": 500})).json()
            assert cycles["total"] >= 1
            done = [c for c in cycles["items"] if c["status"] == "COMPLETED"]
            assert done, cycles
            for c in done:  # the cycle's PnL is exact Decimal arithmetic over its own stored fills
                detail = (await client.get(f"/api/trader/cycles/{c['id']}")).json()
                fills = detail["fills"]
                spent = sum(Decimal(f["quote_quantity"]) for f in fills if f["side"] == "BUY")
                got = sum(Decimal(f["quote_quantity"]) for f in fills if f["side"] == "SELL")
                quote_fees = sum(Decimal(f["commission"]) for f in fills if f["commission_asset"] == "USDT")
                bought = sum(Decimal(f["quantity"]) for f in fills if f["side"] == "BUY")
                sold = sum(Decimal(f["quantity"]) for f in fills if f["side"] == "SELL")
                base_fees = sum(Decimal(f["commission"]) for f in fills if f["commission_asset"] == "BTC")
                leftover = bought - sold - base_fees  # dust below the step size, valued at the exit price
                expected = got - spent - quote_fees + leftover * Decimal(c["exit_price"])
                assert abs(Decimal(c["profit_loss"]) - expected) < Decimal("1e-8"), (c, expected)
            trades = (await client.get("/api/trader/trades", params={"limit": 1000})).json()
            assert len(trades) >= 2 * len(done)
            summary = (await client.get("/api/portfolio/summary")).json()
            assert summary["closed_cycles"] == len(done)
    finally:
        await host.stop()


async def test_replaying_twice_creates_nothing_new(tmp_path: Path) -> None:
    """Candles carry their natural key as message id, and every id downstream is derived from it."""
    candles = lean_hourly_btcusdt()
    settings = load_settings(
        symbols="BTCUSDT",
        interval="1h",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/s.db",
        api_token=TOKEN,
        data_dir=tmp_path,
        strategies="ema_cross,rsi_cross,macd_crossover",
    )
    counts = []
    for _ in range(2):
        host = Host(
            settings,
            PIPELINE,
            clock=SimClock(),
            wiring=Wiring(replay_candles=candles, coordinator={"cooldown_s": 0, "max_signal_age_s": 0}),
        )
        await host.start()
        await asyncio.wait_for(host.services["replay"].done.wait(), 30)  # type: ignore[attr-defined]
        assert await host.bus.drain(30)
        _page, total = await host.services["trader"].cycles.query(limit=1000)  # type: ignore[attr-defined]
        counts.append((total, len(await host.services["trader"].orders.fills(limit=10_000))))  # type: ignore[attr-defined]
        await host.stop()
    assert counts[0] == counts[1] and counts[0][0] > 0


async def test_mutating_route_without_token_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/s.db", api_token=TOKEN, data_dir=tmp_path)
    host = Host(settings, ["trader"])
    await host.start()
    try:
        app = build_app(host)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                r = await client.post("/api/trader/config/pause", headers=headers)
                assert r.status_code == 401
            assert host.services["trader"].paused is False  # type: ignore[attr-defined]
            r = await client.post("/api/trader/config/pause", headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == 200 and host.services["trader"].paused is True  # type: ignore[attr-defined]
            assert (await client.get("/docs")).status_code == 200
            assert (await client.get("/openapi.json")).json()["paths"]["/api/trader/cycles"]
    finally:
        await host.stop()


async def test_per_service_mode_uses_reference_paths(tmp_path: Path) -> None:
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/s.db", api_token=TOKEN, data_dir=tmp_path)
    host = Host(settings, ["trader"], per_service_http=True)
    await host.start()
    try:
        app = build_app(host, per_service=True)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            assert (await client.get("/health")).status_code == 200
            assert (await client.get("/orders")).json() == []
            assert (await client.post("/config/resume")).status_code == 401
    finally:
        await host.stop()


def test_live_events_reach_a_websocket_client(tmp_path: Path) -> None:
    """A signal published on the bus is pushed to a connected dashboard without polling."""
    from fastapi.testclient import TestClient

    from roottrading import messages as m
    from roottrading.domain import Side, Signal, SignalStrength

    settings = load_settings(
        symbols="BTCUSDT", database_url=f"sqlite+aiosqlite:///{tmp_path}/s.db", api_token=TOKEN, data_dir=tmp_path
    )
    host = Host(settings, ["stream"])
    app = build_app(host)
    with TestClient(app) as client:  # noqa: SIM117 - the app's lifespan starts and stops the host around the socket
        with client.websocket_connect("/api/stream/ws") as ws:
            assert ws.receive_json()["topic"] == "hello"
            sig = Signal(
                id="s1",
                time=1,
                symbol="BTCUSDT",
                strategy="x",
                side=Side.BUY,
                strength=SignalStrength.STRONG,
                price=1.0,
            )
            client.portal.call(host.bus.publish, m.SIGNALS, sig)  # type: ignore[union-attr]
            frame = ws.receive_json()
            assert frame["topic"] == "signals" and frame["data"]["id"] == "s1"
