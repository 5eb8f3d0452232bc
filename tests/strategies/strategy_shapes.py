"""Crafted candle series with known shapes, for strategy tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

MINUTE = 60_000


def frame(
    close: np.ndarray | list[float],
    *,
    open_: np.ndarray | None = None,
    high: np.ndarray | None = None,
    low: np.ndarray | None = None,
    volume: np.ndarray | float = 100.0,
    spread: float = 0.1,
    step_ms: int = MINUTE,
) -> pd.DataFrame:
    """Candles from closes: open = previous close, wicks `spread` beyond the body (overridable)."""
    c = np.asarray(close, dtype=np.float64)
    o = np.r_[c[0], c[:-1]] if open_ is None else np.asarray(open_, np.float64)
    h = np.maximum(o, c) + spread if high is None else np.asarray(high, np.float64)
    lo = np.minimum(o, c) - spread if low is None else np.asarray(low, np.float64)
    v = np.broadcast_to(np.asarray(volume, np.float64), c.shape).copy()
    return pd.DataFrame(
        {
            "open_time": np.arange(len(c), dtype=np.int64) * step_ms,
            "open": o,
            "high": h,
            "low": lo,
            "close": c,
            "volume": v,
        }
    )


def line(start: float, end: float, n: int) -> np.ndarray:
    return np.linspace(start, end, n)


def v_shape(n: int = 60, top: float = 200.0, bottom: float = 140.0) -> np.ndarray:
    """Down `n` bars then up `n` bars: every trend-following strategy should turn BUY on the way up."""
    return np.r_[line(top, bottom, n), line(bottom, top, n + 1)[1:]]


def inverted_v(n: int = 60, bottom: float = 140.0, top: float = 200.0) -> np.ndarray:
    return np.r_[line(bottom, top, n), line(top, bottom, n + 1)[1:]]


def geometric(n: int = 150, start: float = 100.0, rate: float = 0.01) -> np.ndarray:
    """Steady exponential rise: no crossing, no reversal, no extreme leaving."""
    return start * (1 + rate) ** np.arange(n)


def zigzag(n: int = 60, mid: float = 100.0, amp: float = 0.5) -> np.ndarray:
    """A flat, quiet range: alternating mid +- amp."""
    return mid + amp * np.where(np.arange(n) % 2 == 0, -1.0, 1.0)


def sine(n: int = 60, mid: float = 100.0, amp: float = 1.0, period: int = 7) -> np.ndarray:
    """A range with real swings (balanced directional movement, low ADX)."""
    return mid + amp * np.sin(np.arange(n) * 2 * np.pi / period)
