"""Fixtures: BTCUSDT rules as Binance published them (basana capture), and a fresh engine."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from roottrading.exchange.filters import SymbolRules, load_exchange_info
from roottrading.exchange.sim import SimConfig, SimEngine

D = Decimal


@pytest.fixture
def btc_rules(fixtures_dir: Path) -> SymbolRules:
    return load_exchange_info(fixtures_dir / "binance_fixtures/basana/binance_btc_usdt_exchange_info.json")["BTCUSDT"]


def simple_rules(symbol: str = "BTCUSDT") -> SymbolRules:
    """Hand-made rules with BTCUSDT's grid (no data file needed, used by property tests)."""
    return SymbolRules(
        symbol=symbol,
        base_asset="BTC",
        quote_asset="USDT",
        min_price=D("0.01"),
        max_price=D("1000000"),
        tick_size=D("0.01"),
        min_qty=D("0.00001"),
        max_qty=D("9000"),
        step_size=D("0.00001"),
        notional_filter="MIN_NOTIONAL",
        min_notional=D("10"),
    )


@pytest.fixture
def engine() -> SimEngine:
    eng = SimEngine([simple_rules()], SimConfig(), balances={"USDT": D("10000"), "BTC": D("1")})
    eng.on_trade("BTCUSDT", 1_000, D("20000"))
    return eng
