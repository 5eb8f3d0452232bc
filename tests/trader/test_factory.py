"""Exchange selection: demo simulator with real BTCUSDT rules and derived rules; live without adapter."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import pytest

from roottrading.config import load_settings
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
