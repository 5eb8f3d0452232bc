"""The order form's filters come from the rules the exchange actually enforces; unknown API routes are 404."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import httpx

from roottrading.config import load_settings
from roottrading.exchange.sim import SimEngine, SimExchange
from roottrading.runtime import Host, Wiring
from roottrading.runtime.http import build_app
from roottrading.services.trader.exchange_factory import btcusdt_rules


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


async def test_the_market_service_alone_serves_the_rules_the_trader_enforces(tmp_path: Path) -> None:
    """Split mode (no trader in the process): the order form's filters are still the ones the trader's exchange
    enforces. They used to come only from the rules the trader put in the shared context, so a market service
    in its own process fell back to Binance's REST (unreachable here: basic info, no filters)."""
    settings = load_settings(
        symbols="BTCUSDT,ETHUSDT",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/m.db",
        api_token="t",
        data_dir=tmp_path,
        binance_rest_url="http://127.0.0.1:9",  # nothing listens: only the enforced rules can answer
    )
    coarse = dataclasses.replace(btcusdt_rules(), step_size=Decimal("0.01"), min_qty=Decimal("0.01"))
    for wiring, step in (
        (Wiring(), btcusdt_rules().step_size),
        (Wiring(exchange=SimExchange(SimEngine([coarse]))), coarse.step_size),
    ):
        host = Host(settings, ["market"], wiring=wiring)
        await host.start()
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(host)), base_url="http://t") as c:
                rows = {r["symbol"]: r for r in (await c.get("/api/market/symbols")).json()}
            btc = rows["BTCUSDT"]
            assert btc["source"] == "exchange" and Decimal(btc["step_size"]) == step
            if wiring.exchange is None:  # demo: every configured symbol, as the simulator derives it
                assert rows["ETHUSDT"]["source"] == "exchange"
        finally:
            await host.stop()
