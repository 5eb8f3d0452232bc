"""Without UNIVERSE_CONFIG the universe is SYMBOLS: shown by GET /api/universe, never published, never fetched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from roottrading import messages as m
from roottrading.config import load_settings
from roottrading.runtime import Host
from roottrading.runtime.http import build_app
from roottrading.universe import UniverseConfigError


async def test_default_universe_is_symbols_and_silent(tmp_path: Path) -> None:
    settings = load_settings(
        symbols="BTCUSDT,ETHUSDT",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/s.db",
        api_token="t",
        data_dir=tmp_path,
        binance_rest_url="http://127.0.0.1:9",  # nothing listens: any request would fail the refresh
    )
    host = Host(settings, ["universe"])
    published: list[Any] = []

    async def on_change(msg: m.Message) -> None:
        published.append(msg.payload)

    await host.bus.subscribe(m.UNIVERSE_CHANGED, "t", on_change)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(host)), base_url="http://t") as c:
        await host.start()
        try:
            assert host.services["universe"].jobs() == [] and host.services["universe"].consumes() == []
            doc = (await c.get("/api/universe")).json()
            assert doc["dynamic"] is False and doc["members"] == ["BTCUSDT", "ETHUSDT"]
            assert [p["reason"] for p in doc["pairs"]] == ["SYMBOLS (no UNIVERSE_CONFIG)"] * 2
            r = await c.post("/api/universe/refresh", headers={"Authorization": "Bearer t"})
            assert r.status_code == 200 and r.json()["members"] == ["BTCUSDT", "ETHUSDT"]
            assert (await c.post("/api/universe/refresh")).status_code == 401
            await host.bus.drain(2)
            assert published == [] and host.settings.symbols == ["BTCUSDT", "ETHUSDT"]
        finally:
            await host.stop()


async def test_a_bad_universe_file_stops_start_up_with_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "u.yaml"
    bad.write_text("source: {type: volume, top: -1}\n")
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/s.db", api_token="t", data_dir=tmp_path, universe_config=str(bad)
    )
    with pytest.raises(UniverseConfigError, match=r"source\.volume\.top: Input should be greater than 0"):
        Host(settings, ["universe"])


async def test_per_service_mode_serves_the_universe_at_the_root(tmp_path: Path) -> None:
    """`roottrading service universe` crashed at start: an empty route path under an empty prefix."""
    settings = load_settings(
        symbols="BTCUSDT", database_url=f"sqlite+aiosqlite:///{tmp_path}/p.db", api_token="t", data_dir=tmp_path
    )
    host = Host(settings, ["universe"], per_service_http=True)
    app = build_app(host, per_service=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        await host.start()
        try:
            r = await c.get("/")
            assert r.status_code == 200 and r.json()["members"] == ["BTCUSDT"]
        finally:
            await host.stop()
