"""Higher timeframes from the base candles, without look-ahead.

Multi-timeframe strategies read e.g. the 1h trend while running on 5m bars. Resampling the base
frame (instead of asking for a second feed) keeps live, paper and backtest identical. A base row
only sees higher-timeframe bars that were *complete* at that row's close.
"""

from __future__ import annotations

import numpy as np

from roottrading.domain import interval_ms
from roottrading.strategies.base import Bars


def base_interval_ms(bars: Bars) -> int:
    """The base bar length, as the most common gap between open times."""
    if len(bars) < 2:
        raise ValueError("need at least two candles to infer the interval")
    gaps = np.diff(bars.open_time)
    vals, counts = np.unique(gaps[gaps > 0], return_counts=True)
    return int(vals[np.argmax(counts)])


def resample(bars: Bars, interval: str) -> tuple[Bars, np.ndarray]:
    """(higher bars, index_map): index_map[i] is the last higher bar complete at base row i, or -1."""
    return resample_ms(bars, interval_ms(interval))


def resample_factor(bars: Bars, factor: int) -> tuple[Bars, np.ndarray]:
    """Higher bars of `factor` base bars each (aligned on epoch multiples, like exchange candles)."""
    return resample_ms(bars, base_interval_ms(bars) * factor)


def resample_ms(bars: Bars, step: int) -> tuple[Bars, np.ndarray]:
    base = base_interval_ms(bars)
    if step < base or step % base:
        raise ValueError(f"cannot resample {base} ms bars to {step} ms bars")
    bucket = bars.open_time // step
    starts = np.r_[0, np.flatnonzero(np.diff(bucket)) + 1]
    ends = np.r_[starts[1:], len(bars)]
    hi = np.maximum.reduceat(bars.high, starts)
    lo = np.minimum.reduceat(bars.low, starts)
    vol = np.add.reduceat(bars.volume, starts)
    htf = Bars(
        open_time=bucket[starts] * step, open=bars.open[starts], high=hi, low=lo, close=bars.close[ends - 1], volume=vol
    )
    # a bucket is complete at the row whose close reaches the bucket's end
    complete_at = np.where((bars.open_time[ends - 1] + base) >= (bucket[starts] + 1) * step, ends - 1, -1)
    index_map = np.full(len(bars), -1, np.int64)
    done = complete_at >= 0
    index_map[complete_at[done]] = np.flatnonzero(done)  # rows are distinct bucket ends
    index_map = np.maximum.accumulate(index_map)
    return htf, index_map


def align(values: np.ndarray, index_map: np.ndarray) -> np.ndarray:
    """Higher-timeframe values broadcast to base rows (NaN before the first complete higher bar)."""
    out = np.full(len(index_map), np.nan)
    ok = index_map >= 0
    out[ok] = np.asarray(values, np.float64)[index_map[ok]]
    return out
