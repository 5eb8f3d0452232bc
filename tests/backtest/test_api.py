"""The backtest API: POST starts a run in a worker process, progress on the bus, GET lists and reads it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from roottrading import messages as m
from roottrading.config import load_settings
from roottrading.runtime import Host
from roottrading.runtime.http import build_app
from tests.backtest.helpers import hourly

TOKEN = "bt-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_a_run_started_over_http_completes_reports_progress_and_is_stored(tmp_path: Path) -> None:
    settings = load_settings(
        symbols="BTCUSDT",
        interval="1h",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/api.db",
        api_token=TOKEN,
        data_dir=tmp_path,
    )
    host = Host(settings, ["backtest"])
    events: list[m.BacktestProgress] = []
    finished = asyncio.Event()

    async def on_progress(msg: m.Message) -> None:
        events.append(msg.payload)
        if msg.payload.status != "running":
            finished.set()

    await host.start()
    await host.bus.subscribe(m.BACKTEST_PROGRESS, "test", on_progress)
    try:
        app = build_app(host)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            cs = hourly()
            body = {
                "strategies": ["macd_crossover"],
                "symbols": ["BTCUSDT"],
                "interval": "1h",
                "data": "bundled",
                "start": cs[0].open_time,
                "end": cs[-1].open_time + 3_600_000,
                "engine": "replay",
            }
            bad = await client.post("/api/backtest/runs", json={**body, "settings": {"nope": "1"}}, headers=AUTH)
            assert bad.status_code == 422 and "nope" in bad.json()["detail"]
            r = await client.post("/api/backtest/runs", json=body, headers=AUTH)
            assert r.status_code == 200, r.text
            run_id = r.json()["id"]
            busy = await client.post("/api/backtest/runs", json=body, headers=AUTH)
            assert busy.status_code == 409
            await asyncio.wait_for(finished.wait(), 90)
            assert events[-1].status == "completed" and events[-1].done == 120, events[-1]
            run = (await client.get(f"/api/backtest/runs/{run_id}")).json()
            assert run["status"] == "completed" and run["candles"] == 120 and run["trades"]
            assert run["metrics"]["trades"] == len(run["trades"]) and len(run["equity"]) == 120
            listed = (await client.get("/api/backtest/runs")).json()
            assert [x["id"] for x in listed] == [run_id]
            assert (await client.get("/api/backtest/runs/bt-none")).status_code == 404
    finally:
        await host.stop()


async def test_a_runs_candles_are_read_from_its_source_and_merged_for_the_chart(tmp_path: Path) -> None:
    from roottrading.backtest.store import BacktestRepo
    from tests.backtest.helpers import config

    settings = load_settings(
        symbols="BTCUSDT", interval="1h", database_url=f"sqlite+aiosqlite:///{tmp_path}/c.db", data_dir=tmp_path
    )
    host = Host(settings, ["backtest"])
    await host.start()
    try:
        cfg = config()
        await BacktestRepo(host.db).start("bt-chart", cfg, 1)
        app = build_app(host)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            cs = hourly()
            full = (await client.get("/api/backtest/runs/bt-chart/candles", params={"symbol": "btcusdt"})).json()
            assert [c["open_time"] for c in full] == [c.open_time for c in cs]
            merged = (await client.get("/api/backtest/runs/bt-chart/candles?symbol=BTCUSDT&bars=50")).json()
            assert len(merged) == 40  # 120 candles, 3 per bar
            first = merged[0]
            assert first["open_time"] == cs[0].open_time and first["close_time"] == cs[2].close_time
            assert first["open"] == cs[0].open and first["close"] == cs[2].close
            assert first["high"] == max(c.high for c in cs[:3]) and first["low"] == min(c.low for c in cs[:3])
            assert merged[-1]["close_time"] == cs[-1].close_time
            other = await client.get("/api/backtest/runs/bt-chart/candles?symbol=ETHUSDT")
            assert other.status_code == 422 and "ETHUSDT" in other.json()["detail"]
            assert (await client.get("/api/backtest/runs/bt-none/candles?symbol=BTCUSDT")).status_code == 404
    finally:
        await host.stop()
