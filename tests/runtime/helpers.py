"""Recorded candles for tests: LEAN's Binance BTCUSDT 1h (Apache-2.0), as bundled with the package."""

from __future__ import annotations

from roottrading.datasets import load_candles
from roottrading.domain import Candle


def lean_hourly_btcusdt() -> list[Candle]:
    """120 real Binance BTC/USDT 1h candles (2018-05-01..05), closed, from roottrading/datasets."""
    return list(load_candles("BTCUSDT", "1h"))
