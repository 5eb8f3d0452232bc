"""Seeded synthetic market: a geometric random walk rendered as realistic OHLCV candles.

Why: demos and soak tests need any symbol, any length, reproducibly. Prices are rounded to a tick that
suits their magnitude and stored as the float of their decimal string, so formatting a value with 8
decimals and parsing it back gives the identical float (the fake exchange's round-trip relies on it).
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from roottrading.domain import Candle, interval_ms

DEFAULT_START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def _decimals_for(price: float) -> int:
    digits = math.floor(math.log10(price)) + 1 if price > 0 else 1
    return max(2, min(8, 6 - digits))


def _q(x: float, d: int) -> float:
    return float(f"{x:.{d}f}")


def synthetic_candles(
    symbol: str,
    interval: str = "1m",
    n: int = 1_000,
    *,
    seed: int = 0,
    start_ms: int = DEFAULT_START_MS,
    start_price: float = 100.0,
    annual_volatility: float = 0.8,
    annual_drift: float = 0.0,
    substeps: int = 12,
    base_volume: float = 50.0,
) -> list[Candle]:
    """`n` closed candles starting at `start_ms` (aligned down to the interval). Same args -> same candles;
    different symbols with the same seed get independent paths."""
    if n < 0 or start_price <= 0 or substeps < 1:
        raise ValueError("need n >= 0, start_price > 0 and substeps >= 1")
    step = interval_ms(interval)
    start = start_ms - start_ms % step
    rng = np.random.default_rng([seed, zlib.crc32(symbol.upper().encode())])
    years = step / (365.0 * 86_400_000)
    sigma = annual_volatility * math.sqrt(years / substeps)
    mu = (annual_drift - 0.5 * annual_volatility**2) * years / substeps
    log_ret = rng.normal(mu, sigma, size=(n, substeps))
    paths = start_price * np.exp(np.cumsum(log_ret.ravel())).reshape(n, substeps)
    vols = base_volume * rng.lognormal(0.0, 0.6, size=n)
    trades = rng.integers(20, 400, size=n)
    d = _decimals_for(start_price)
    out: list[Candle] = []
    prev_close = _q(start_price, d)
    for i in range(n):
        path = paths[i]
        o = prev_close
        c = _q(float(path[-1]), d)
        h = max(o, c, _q(float(path.max()), d))
        lo = min(o, c, _q(float(path.min()), d))
        v = _q(float(vols[i]), 5)
        ot = start + i * step
        out.append(
            Candle(
                symbol=symbol.upper(),
                interval=interval,
                open_time=ot,
                close_time=ot + step - 1,
                open=o,
                high=h,
                low=lo,
                close=c,
                volume=v,
                quote_volume=_q(v * (o + c) / 2, 4),
                trades=int(trades[i]),
            )
        )
        prev_close = c
    return out
