"""Bundled real candles and a config for them: LEAN's Binance BTCUSDT 1h (120 candles, Apache-2.0)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from roottrading.backtest.model import BacktestConfig
from roottrading.datasets import load_candles
from roottrading.domain import Candle

STRATEGIES = ("ema_cross", "rsi_cross", "macd_crossover")


def hourly() -> list[Candle]:
    return list(load_candles("BTCUSDT", "1h"))


def config(**kw: Any) -> BacktestConfig:
    cs = hourly()
    base: dict[str, Any] = {
        "strategies": STRATEGIES,
        "symbols": ("BTCUSDT",),
        "interval": "1h",
        "start_ms": cs[0].open_time,
        "end_ms": cs[-1].open_time + 3_600_000,
        "data": "bundled",
        "balance": Decimal(10_000),
        "engine": "replay",
    }
    base.update(kw)
    return BacktestConfig(**base)
