"""The order form's filters come from the rules the exchange actually enforces; unknown API routes are 404."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

from roottrading import messages as m
from roottrading.config import load_settings
from roottrading.domain import Tick
from roottrading.exchange.fake_binance import FakeBinanceConfig
from roottrading.exchange.fake_binance import build_app as build_fake
from roottrading.exchange.sim import SimEngine, SimExchange
from roottrading.runtime import Host, Wiring
from roottrading.runtime.http import build_app
from roottrading.services.trader.exchange_factory import btcusdt_rules
from tests.marketdata.helpers import serve


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


async def test_the_market_service_follows_the_universe(tmp_path: Path) -> None:
    """It served the start-up SYMBOLS forever: a pair that joined the universe had no filters, no ticker."""
    ufile = tmp_path / "u.yaml"
    ufile.write_text("source: {type: static, symbols: [BTCUSDT]}\nfilters: [{type: price, min: 1}]\n")
    settings = load_settings(
        symbols="BTCUSDT,ETHUSDT",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/m.db",
        api_token="t",
        data_dir=tmp_path,
        binance_rest_url="http://127.0.0.1:9",  # nothing listens: the demo rules answer
        universe_config=str(ufile),
    )
    host = Host(settings, ["market"])
    await host.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(host)), base_url="http://t") as c:
            assert {r["symbol"] for r in (await c.get("/api/market/symbols")).json()} == {"BTCUSDT", "ETHUSDT"}
            change = m.UniverseChanged(
                time=0, members=["BTCUSDT", "SOLUSDT"], streamed=["BTCUSDT", "SOLUSDT"], added=["SOLUSDT"]
            )
            await host.ctx.publish(m.UNIVERSE_CHANGED, change, key="universe")
            await host.bus.drain(5)
            rows = {r["symbol"]: r for r in (await c.get("/api/market/symbols")).json()}
            assert set(rows) == {"BTCUSDT", "SOLUSDT"}
            assert rows["SOLUSDT"]["source"] == "exchange" and rows["SOLUSDT"]["step_size"]  # its filters too

            # its ticks are consumed now (the host re-read the service's subscriptions); ETH's are not
            await host.ctx.publish(m.ticks_topic("SOLUSDT"), Tick(symbol="SOLUSDT", time=1, price=150.0))
            await host.ctx.publish(m.ticks_topic("ETHUSDT"), Tick(symbol="ETHUSDT", time=1, price=3000.0))
            await host.bus.drain(5)
            prices = {r["symbol"]: r["price"] for r in (await c.get("/api/market/ticker")).json()}
            assert prices == {"BTCUSDT": None, "SOLUSDT": 150.0}  # BTC: no tick and no candle yet
            assert "ETHUSDT" not in host.services["market"].ticks
    finally:
        await host.stop()


async def test_live_filters_of_a_new_member_are_fetched_when_the_gateway_copy_lacks_it(tmp_path: Path) -> None:
    """Live with the gateway in the process: its exchangeInfo copy holds its start-up symbols only, and was served
    as is, so a pair that joined the universe had no filters."""
    async with serve(build_fake(FakeBinanceConfig(symbols=("BTCUSDT", "SOLUSDT")))) as base:
        settings = load_settings(
            symbols="BTCUSDT",
            database_url=f"sqlite+aiosqlite:///{tmp_path}/m.db",
            api_token="t",
            data_dir=tmp_path,
            trading_mode="live",
            binance_api_key="k",
            binance_secret_key="s",
            binance_rest_url=base,
        )
        host = Host(settings, ["market"])
        gateway_copy = {"symbols": [{"symbol": "BTCUSDT", "status": "TRADING", "filters": []}]}
        host.ctx.services["gateway"] = SimpleNamespace(exchange_info=gateway_copy)  # type: ignore[assignment]
        mkt: Any = host.services["market"]
        assert [r["source"] for r in await mkt.symbol_list()] == ["exchange"]  # the gateway's copy covers it
        host.settings.symbols = ["BTCUSDT", "SOLUSDT"]  # what the host does on universe.changed
        rows = {r["symbol"]: r for r in await mkt.symbol_list()}
        assert rows["SOLUSDT"]["source"] == "exchange" and rows["SOLUSDT"]["step_size"]  # from the exchange
        await host.db.close()
