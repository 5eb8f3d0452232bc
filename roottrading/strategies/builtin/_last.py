"""Scalar twins of the array helpers, for the strategies' `may_fire` pre-checks.

Each function gives bit-for-bit what the array form gives at the last row (IEEE float64 either way): the
live analyzer evaluates 27 strategies per candle, and NumPy's per-call overhead on ~100-row arrays was
most of that cost. Indicator arrays themselves still come from TA-Lib over the whole tail (their values
depend on where the tail starts), shared between strategies through `Bars.cached`.
"""

from __future__ import annotations

import math

import numpy as np

from roottrading.indicators import atr, ema, highest, lowest, rsi, sma
from roottrading.indicators.extra import _TIE
from roottrading.strategies.base import Bars

NAN = math.nan
_INF = math.inf


def div(a: float, b: float) -> float:
    """a / b with NumPy's IEEE result for b == 0 (inf with the right sign, NaN for 0/0)."""
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0.0:
            return NAN
        return math.copysign(_INF, a) * math.copysign(1.0, b)


def up_cross(a1: float, a0: float, b1: float, b0: float) -> bool:
    """`crossed_above(a, b)` at the last row: a0/b0 previous bar, a1/b1 last bar (b may be a constant)."""
    e1, e0 = b1 + _TIE * abs(b1), b0 + _TIE * abs(b0)
    return a1 > e1 and a0 <= e0


def down_cross(a1: float, a0: float, b1: float, b0: float) -> bool:
    e1, e0 = b1 - _TIE * abs(b1), b0 - _TIE * abs(b0)
    return a1 < e1 and a0 >= e0


def last2(x: np.ndarray) -> tuple[float, float]:
    """(last, previous) as Python floats."""
    a0, a1 = x[-2:].tolist()
    return a1, a0


def crosses(a: np.ndarray, b: np.ndarray) -> bool:
    """`crossed_above(a, b) | crossed_below(a, b)` at the last row."""
    a1, a0 = last2(a)
    b1, b0 = last2(b)
    return up_cross(a1, a0, b1, b0) or down_cross(a1, a0, b1, b0)


def leaves(x: np.ndarray, low: float, high: float) -> bool:
    """`crossed_above(x, low) | crossed_below(x, high)` at the last row (constant levels)."""
    x1, x0 = last2(x)
    return up_cross(x1, x0, low, low) or down_cross(x1, x0, high, high)


# --- indicator arrays shared by several strategies on the same tail (same call as in `generate`) ---


def c_atr(bars: Bars, period: int = 14) -> np.ndarray:
    return bars.cached(("atr", period), lambda: atr(bars.high, bars.low, bars.close, period))


def c_ema(bars: Bars, period: int) -> np.ndarray:
    return bars.cached(("ema", period), lambda: ema(bars.close, period))


def c_rsi(bars: Bars, period: int) -> np.ndarray:
    return bars.cached(("rsi", period), lambda: rsi(bars.close, period))


def c_sma(bars: Bars, field: str, period: int) -> np.ndarray:
    return bars.cached(("sma", field, period), lambda: sma(getattr(bars, field), period))


def c_highest(bars: Bars, field: str, period: int) -> np.ndarray:
    return bars.cached(("max", field, period), lambda: highest(getattr(bars, field), period))


def c_lowest(bars: Bars, field: str, period: int) -> np.ndarray:
    return bars.cached(("min", field, period), lambda: lowest(getattr(bars, field), period))
