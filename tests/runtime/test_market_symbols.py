"""The order form's filters come from the rules the exchange actually enforces; unknown API routes are 404."""

from __future__ import annotations

from pathlib import Path

import httpx

from roottrading.config import load_settings
from roottrading.runtime import Host
from roottrading.runtime.http import build_app


async def test_symbols_carry_the_enforced_filters_and_unknown_api_is_404(tmp_path: Path) -> None:
    settings = load_settings(
        symbols="BTCUSDT,ETHUSDT", database_url=f"sqlite+aiosqlite:///{tmp_path}/m.db", api_token="t", data_dir=tmp_path
    )
    host = Host(settings, ["trader", "market"])
    await host.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(host)), base_url="http://t") as c:
            rows = {r["symbol"]: r for r in (await c.get("/api/market/symbols")).json()}
            assert set(rows) == {"BTCUSDT", "ETHUSDT"}
            btc = rows["BTCUSDT"]
            assert btc["source"] == "exchange" and btc["filters"]["LOT_SIZE"]["stepSize"]
            trader = {r["symbol"]: r for r in (await c.get("/api/trader/symbols")).json()}
            assert "BTCUSDT" in trader
            assert (await c.get("/api/no-such-route")).status_code == 404
    finally:
        await host.stop()
