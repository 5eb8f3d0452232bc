"""Strategy settings changed through the API survive a restart of the platform (issue 14: --apply persists)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from roottrading.config import load_settings
from roottrading.runtime import Host
from roottrading.runtime.http import build_app
from roottrading.services.analyzer import saved

AUTH = {"Authorization": "Bearer t"}


def _host(tmp_path: Path) -> Host:
    settings = load_settings(
        symbols="BTCUSDT,ETHUSDT",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/a.db",
        api_token="t",
        data_dir=tmp_path,
        strategies="ema_cross,rsi_cross",
    )
    return Host(settings, ["analyzer"])


async def _strategies(c: httpx.AsyncClient, symbol: str | None = None) -> dict[str, Any]:
    params = {"symbol": symbol} if symbol else {}
    return {s["name"]: s for s in (await c.get("/api/analyzer/strategies", params=params)).json()}


async def test_params_and_flags_set_through_the_api_survive_a_restart(tmp_path: Path) -> None:
    host = _host(tmp_path)
    await host.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(host)), base_url="http://t") as c:
            r = await c.put(
                "/api/analyzer/strategies/ema_cross",
                json={"params": {"fast": 7, "slow": 40}, "symbol": "BTCUSDT"},
                headers=AUTH,
            )
            assert r.status_code == 200, r.text
            r = await c.put("/api/analyzer/strategies/ema_cross", json={"params": {"fast": 11}}, headers=AUTH)
            assert r.status_code == 200, r.text
            r = await c.put(
                "/api/analyzer/strategies/rsi_cross", json={"enabled": False, "symbol": "ETHUSDT"}, headers=AUTH
            )
            assert r.status_code == 200, r.text
            refused = await c.put(
                "/api/analyzer/strategies/ema_cross", json={"params": {"fast": 99, "slow": 10}}, headers=AUTH
            )
            assert refused.status_code == 422
    finally:
        await host.stop()

    host = _host(tmp_path)  # a new process reading the same database
    await host.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(host)), base_url="http://t") as c:
            btc, eth, every = [await _strategies(c, s) for s in ("BTCUSDT", "ETHUSDT", None)]
            assert btc["ema_cross"]["params"]["fast"]["value"] == 7  # the per-symbol value wins
            assert btc["ema_cross"]["params"]["slow"]["value"] == 40
            assert eth["ema_cross"]["params"]["fast"]["value"] == 11  # the all-symbol value
            assert every["ema_cross"]["params"]["fast"]["value"] == 11
            assert eth["rsi_cross"]["enabled"] is False and btc["rsi_cross"]["enabled"] is True
            assert every["ema_cross"]["enabled"] is True
    finally:
        await host.stop()


def test_saved_document_replays_all_symbol_settings_before_per_symbol_ones() -> None:
    doc: dict[str, Any] = {}
    saved.record(doc, "a", "BTCUSDT", False, {"x": 1})
    saved.record(doc, "a", None, True, {"x": 2})
    saved.record(doc, "a", "BTCUSDT", None, {"y": 3})
    assert saved.ops(doc) == [
        ("params", "a", None, {"x": 2}),
        ("enable", "a", None, None),
        ("params", "a", "BTCUSDT", {"x": 1, "y": 3}),
        ("disable", "a", "BTCUSDT", None),
    ]
