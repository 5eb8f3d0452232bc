"""The coordinator sizes on the exchange's grid (step size, min notional) when it runs without the trader
(its own process): it reads the rules through the exchange port itself, not from the trader."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path
from typing import Any

from roottrading import messages as m
from roottrading.clock import SimClock
from roottrading.config import load_settings
from roottrading.exchange.errors import Disconnected
from roottrading.exchange.filters import SymbolRules
from roottrading.exchange.sim import SimConfig, SimEngine, SimExchange
from roottrading.runtime import Host, Wiring
from roottrading.services.coordinator.rules import SymbolRulesCache
from roottrading.services.trader.exchange_factory import btcusdt_rules, demo_rules
from tests.coordinator.helpers import T0, TOKEN, Capture, message, sig

D = Decimal
# a grid far from the coordinator's defaults (step 0.00001, min notional 10)
COARSE = dataclasses.replace(btcusdt_rules(), step_size=D("0.01"), min_qty=D("0.01"), min_notional=D(50))


async def coordinator_only(tmp_path: Path, wiring: Wiring, symbols: str = "BTCUSDT") -> Host:
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/c.db",
        api_token=TOKEN,
        data_dir=tmp_path,
        symbols=symbols,
        risk_reload_s=3600,
    )
    host = Host(settings, ["risk", "coordinator"], clock=SimClock(T0), wiring=wiring)  # no trader in the process
    await host.start()
    return host


async def test_coordinator_without_trader_sizes_with_the_exchange_step_and_min_notional(tmp_path: Path) -> None:
    exchange = SimExchange(SimEngine([COARSE], SimConfig(), {"USDT": D(10_000)}))
    host = await coordinator_only(
        tmp_path, Wiring(exchange=exchange, coordinator={"cooldown_s": 0, "max_notional": {"BTCUSDT": "2000"}})
    )
    cap = Capture()
    await host.bus.subscribe(m.ORDER_REQUESTS, "test", cap)
    try:
        assert "trader" not in host.services
        co: Any = host.services["coordinator"]
        # risk 100 over a 1000 stop distance = 0.1 BTC = 3000 quote, capped at 2000 quote = 0.0666.. BTC
        await co.on_signal(message(sig("s1", price=30000.0, stop=29000.0)))
        assert await host.bus.drain(5)
        (req,) = cap.requests
        assert req.quantity == D("0.06")  # on the exchange's 0.01 grid (the default grid gives 0.06666)
        # 40 quote is above the default min notional (10) but below the exchange's (50)
        co.cfg.max_notional["BTCUSDT"] = D(40)
        await co.on_signal(message(sig("s2", price=30000.0, stop=29000.0, strategy="s2")))
        (row,) = await co.decisions.query(signal_id="s2")
        assert row["decision"] == "rejected" and "notional" in row["reason"]
    finally:
        await host.stop()


async def test_demo_coordinator_uses_the_simulator_rules_of_its_symbols(tmp_path: Path) -> None:
    host = await coordinator_only(tmp_path, Wiring(coordinator={"cooldown_s": 0}), symbols="ETHUSDT")
    try:
        co: Any = host.services["coordinator"]
        rules = co._rules("ETHUSDT")
        assert rules is not None and rules.step_size == D("0.0001")  # scaled for ETH, as the trader's sim
    finally:
        await host.stop()


async def test_a_pair_that_joins_the_universe_gets_its_rules_at_its_first_signal(tmp_path: Path) -> None:
    """The rules were loaded for the start-up SYMBOLS only: a pair the universe added was sized on the default
    grid until the next hourly refresh."""
    host = await coordinator_only(tmp_path, Wiring(coordinator={"cooldown_s": 0}), symbols="ETHUSDT")
    try:
        co: Any = host.services["coordinator"]
        assert "SOLUSDT" not in co.symbol_rules.rules
        host.settings.symbols = ["ETHUSDT", "SOLUSDT"]  # what the host does on universe.changed
        await co.on_signal(message(sig("s1", symbol="SOLUSDT", price=150.0, stop=140.0)))
        sim = demo_rules(["SOLUSDT"], None, "USDT")["SOLUSDT"]  # what the trader's simulator enforces
        assert co.symbol_rules.rules["SOLUSDT"] == sim and sim.step_size != co.cfg.default_step
        loaded = co.symbol_rules.loaded_at
        await co.on_signal(message(sig("s2", symbol="SOLUSDT", price=150.0, stop=140.0, strategy="s2")))
        assert co.symbol_rules.loaded_at == loaded  # once per new pair, not per signal
    finally:
        await host.stop()


async def test_rules_cache_falls_back_then_retries_and_keeps_what_it_had(tmp_path: Path) -> None:
    clock = SimClock(T0)
    answers: list[Any] = [Disconnected(), {"BTCUSDT": COARSE}, Disconnected()]

    async def load() -> dict[str, SymbolRules]:
        a = answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return a  # type: ignore[no-any-return]

    cache = SymbolRulesCache(load, clock.now_ms, refresh_s=3600, retry_s=60)
    await cache.refresh()
    assert cache.get("BTCUSDT") is None and cache.error is not None  # defaults until it loads
    await cache.refresh()
    assert answers and len(answers) == 2  # not due yet: no request
    clock.advance(60_000)
    await cache.refresh()
    assert cache.get("BTCUSDT") == COARSE and cache.error is None
    clock.advance(3_600_000)
    await cache.refresh()  # refresh fails: the rules loaded before stay
    assert cache.get("BTCUSDT") == COARSE and cache.error is not None


async def test_live_rules_come_from_the_exchanges_public_exchange_info() -> None:
    from types import SimpleNamespace

    from roottrading.services.gateway.demo import demo_exchange_config, fake_exchange
    from roottrading.services.trader.exchange_factory import rules_loader

    async with fake_exchange(demo_exchange_config(["ETHUSDT"], "1m", candles_per_s=0)) as base:
        settings = SimpleNamespace(
            symbols=["ETHUSDT"],
            trading_mode="live",
            binance_rest_url=base,
            binance_testnet=False,
            quote_asset="USDT",
            ccxt_id=None,
        )
        rules = await rules_loader(SimpleNamespace(wiring=Wiring(), settings=settings))()
    assert rules["ETHUSDT"].step_size > 0 and rules["ETHUSDT"].min_notional > 0
