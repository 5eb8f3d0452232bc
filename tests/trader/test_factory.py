"""Exchange selection: demo simulator with real BTCUSDT rules and derived rules; live without adapter."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest

from roottrading import messages as m
from roottrading.config import load_settings
from roottrading.domain import Candle, OrderType, Side
from roottrading.exchange.sim import SimExchange
from roottrading.runtime import Host, Wiring
from roottrading.services.trader.exchange_factory import btcusdt_rules, create_exchange, demo_rules

D = Decimal


def test_demo_rules_are_real_for_btc_and_scaled_for_others() -> None:
    rules = demo_rules(["BTCUSDT", "ETHUSDT", "ADAUSDT"], {"ADAUSDT": 0.3})
    btc = rules["BTCUSDT"]
    assert (btc.tick_size, btc.step_size, btc.min_notional) == (D("0.01"), D("0.00001"), D(10))
    eth, ada = rules["ETHUSDT"], rules["ADAUSDT"]
    assert (eth.base_asset, eth.quote_asset, eth.tick_size, eth.step_size) == ("ETH", "USDT", D("0.001"), D("0.0001"))
    assert (ada.base_asset, ada.tick_size, ada.step_size) == ("ADA", D("1e-7"), D(1))
    assert ada.min_notional == btc.min_notional and ada.percent_filter == btc.percent_filter


async def test_demo_mode_builds_a_funded_simulator_the_trader_feeds(tmp_path: Path) -> None:
    settings = load_settings(
        symbols="BTCUSDT,ETHUSDT", database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db", api_token="t", data_dir=tmp_path
    )
    host = Host(settings, ["trader"], wiring=Wiring(demo_balances={"BTC": "0.5"}))
    svc = host.services["trader"]
    assert isinstance(svc.exchange, SimExchange) and svc.feed_market
    bal = await svc.exchange.balances()
    assert (bal["USDT"].free, bal["BTC"].free) == (D(10000), D("0.5"))
    assert btcusdt_rules() == (await svc.exchange.exchange_info())["BTCUSDT"]


def test_live_mode_without_the_adapter_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "roottrading.exchange.binance.adapter", None)  # import fails
    settings = load_settings(
        trading_mode="live",
        binance_api_key="k",
        binance_secret_key="s",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db",
        api_token="t",
        data_dir=tmp_path,
    )

    class Ctx:
        wiring: ClassVar[Wiring] = Wiring()

    ctx = Ctx()
    ctx.settings = settings  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="live trading adapter not available"):
        create_exchange(ctx)


async def test_demo_simulator_lists_a_pair_that_joins_the_universe(tmp_path: Path) -> None:
    """The demo simulator was built for the start-up SYMBOLS: a pair the universe added had no book, so its
    candles were not fed and its orders were refused as an unknown symbol."""
    ufile = tmp_path / "u.yaml"
    ufile.write_text("source: {type: static, symbols: [BTCUSDT]}\nfilters: [{type: price, min: 1}]\n")
    settings = load_settings(
        symbols="BTCUSDT",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db",
        api_token="t",
        data_dir=tmp_path,
        universe_config=str(ufile),
    )
    host = Host(settings, ["trader"])
    await host.start()
    try:
        svc: Any = host.services["trader"]
        assert "SOLUSDT" not in await svc.exchange.exchange_info()
        change = m.UniverseChanged(time=0, members=["BTCUSDT", "SOLUSDT"], streamed=["BTCUSDT", "SOLUSDT"])
        await host.ctx.publish(m.UNIVERSE_CHANGED, change, key="universe")
        await host.bus.drain(5)
        c = Candle(
            symbol="SOLUSDT",
            interval="1m",
            open_time=0,
            close_time=59_999,
            open=150,
            high=151,
            low=149,
            close=150.5,
            volume=10,
        )
        await host.ctx.publish(m.candles_topic("SOLUSDT"), c, key="SOLUSDT", msg_id=c.key)
        await host.bus.drain(5)
        assert (await svc.exchange.exchange_info())["SOLUSDT"] == demo_rules(["SOLUSDT"])["SOLUSDT"]
        assert svc.core.rules["SOLUSDT"] == demo_rules(["SOLUSDT"])["SOLUSDT"]  # the trader may enter it
        assert svc.exchange.engine.last_price("SOLUSDT") == D("150.5")  # its candles feed the simulator
    finally:
        await host.stop()


async def test_stored_paper_account_keeps_a_pair_the_universe_added(tmp_path: Path) -> None:
    """After a restart the simulator is built for SYMBOLS again: a stored order on a pair the universe had
    added made the paper account's restore fail ("no rules were given for it") and the trader not start."""
    ufile = tmp_path / "u.yaml"
    ufile.write_text("source: {type: static, symbols: [BTCUSDT]}\nfilters: [{type: price, min: 1}]\n")
    settings = {
        "symbols": "BTCUSDT",
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/x.db",
        "api_token": "t",
        "data_dir": tmp_path,
        "universe_config": str(ufile),
        "trader_paper_account_stored": True,
    }
    c = Candle(
        symbol="SOLUSDT",
        interval="1m",
        open_time=0,
        close_time=59_999,
        open=150,
        high=151,
        low=149,
        close=150,
        volume=1,
    )
    host = Host(load_settings(**settings), ["trader"])
    await host.start()
    try:
        svc: Any = host.services["trader"]
        change = m.UniverseChanged(time=0, members=["BTCUSDT", "SOLUSDT"], streamed=["BTCUSDT", "SOLUSDT"])
        await host.ctx.publish(m.UNIVERSE_CHANGED, change, key="universe")
        await host.bus.drain(5)
        await host.ctx.publish(m.candles_topic("SOLUSDT"), c, key="SOLUSDT", msg_id=c.key)  # listed at its candle
        await host.bus.drain(5)
        await svc.exchange.place_order(
            symbol="SOLUSDT", side=Side.BUY, type=OrderType.LIMIT, client_order_id="x1", quantity=D(1), price=D(100)
        )
    finally:
        await host.stop()
    host = Host(load_settings(**settings), ["trader"])
    await host.start()
    try:
        (o,) = await host.services["trader"].exchange.open_orders("SOLUSDT")  # type: ignore[attr-defined]
        assert o.client_order_id == "x1" and o.price == D(100)
    finally:
        await host.stop()
