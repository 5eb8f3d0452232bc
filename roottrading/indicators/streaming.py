"""Incremental forms for live use: one candle in, the latest value out.

Two tools, for two needs:
- `RollingFrame`: a bounded OHLCV buffer (NumPy ring that compacts) that the analyzer appends
  closed candles to and hands to strategies as a DataFrame. Re-appending the same open_time
  replaces the last row (an in-progress bar being updated). Any vectorised indicator recomputed
  on it gives exactly the full-array value as long as the buffer still holds the whole history;
  once it drops old rows, window indicators (SMA, WMA, MAX/MIN, BBANDS, CCI, WILLR, ROC) stay
  exact and the recursive ones (EMA, RSI, ATR, ADX, SAR, OBV) converge but are not bit-identical.
- O(1) state machines `EMAStream`, `SMAStream`, `RSIStream`, `ATRStream`: exact TA-Lib
  recurrences (same seeds), for hot paths that must not recompute a window per candle.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pandas as pd

from roottrading.domain import Candle

COLUMNS = ("open_time", "open", "high", "low", "close", "volume")


class RollingFrame:
    """Last `capacity` candles of one symbol/interval as float64 arrays."""

    def __init__(self, capacity: int = 1000) -> None:
        if capacity < 2:
            raise ValueError(f"capacity must be >= 2, got {capacity}")
        self.capacity = capacity
        self._buf = np.empty((2 * capacity, len(COLUMNS)), dtype=np.float64)
        self._start = 0
        self._end = 0

    def __len__(self) -> int:
        return self._end - self._start

    @property
    def last_open_time(self) -> int | None:
        return int(self._buf[self._end - 1, 0]) if len(self) else None

    def append(self, open_time: int, open_: float, high: float, low: float, close: float, volume: float) -> None:
        """Add a bar; the same open_time as the last bar replaces it; an older one is an error."""
        last = self.last_open_time
        row = (float(open_time), open_, high, low, close, volume)
        if last is not None and open_time == last:
            self._buf[self._end - 1] = row
            return
        if last is not None and open_time < last:
            raise ValueError(f"candle at {open_time} is older than the last one ({last})")
        if self._end == len(self._buf):  # compact: keep the newest capacity-1 rows at the front
            keep = self._buf[self._end - (self.capacity - 1) : self._end].copy()
            self._buf[: len(keep)] = keep
            self._start, self._end = 0, len(keep)
        self._buf[self._end] = row
        self._end += 1
        if len(self) > self.capacity:
            self._start += 1

    def append_candle(self, candle: Candle) -> None:
        self.append(candle.open_time, candle.open, candle.high, candle.low, candle.close, candle.volume)

    def column(self, name: str) -> np.ndarray:
        return self._buf[self._start : self._end, COLUMNS.index(name)]

    def to_frame(self) -> pd.DataFrame:
        """A copy as the DataFrame strategies take (open_time as int64 ms)."""
        data = self._buf[self._start : self._end]
        df = pd.DataFrame(data.copy(), columns=list(COLUMNS))
        df["open_time"] = df["open_time"].astype(np.int64)
        return df


class SMAStream:
    def __init__(self, period: int) -> None:
        self.period = period
        self._win: deque[float] = deque(maxlen=period)

    def update(self, x: float) -> float:
        self._win.append(x)
        if len(self._win) < self.period:
            return math.nan
        return math.fsum(self._win) / self.period


class EMAStream:
    """TA-Lib EMA: SMA seed over the first `period` values, then prev + k*(x-prev)."""

    def __init__(self, period: int) -> None:
        self.period = period
        self.k = 2.0 / (period + 1)
        self._seed: list[float] = []
        self.value = math.nan

    def update(self, x: float) -> float:
        if math.isnan(self.value):
            self._seed.append(x)
            if len(self._seed) == self.period:
                self.value = sum(self._seed) / self.period
            return self.value
        self.value = (x - self.value) * self.k + self.value
        return self.value


class _Wilder:
    """Wilder smoothing seeded by a simple mean of the first `period` inputs."""

    def __init__(self, period: int) -> None:
        self.period = period
        self._seed: list[float] = []
        self.value = math.nan

    def update(self, x: float) -> float:
        if math.isnan(self.value):
            self._seed.append(x)
            if len(self._seed) == self.period:
                self.value = sum(self._seed) / self.period
            return self.value
        self.value = (self.value * (self.period - 1) + x) / self.period
        return self.value


class RSIStream:
    """TA-Lib RSI: first value after `period` changes; Wilder averages of gains and losses."""

    def __init__(self, period: int = 14) -> None:
        self._gain, self._loss = _Wilder(period), _Wilder(period)
        self._prev: float | None = None

    def update(self, close: float) -> float:
        if self._prev is None:
            self._prev = close
            return math.nan
        change = close - self._prev
        self._prev = close
        g = self._gain.update(max(change, 0.0))
        lo = self._loss.update(max(-change, 0.0))
        if math.isnan(g):
            return math.nan
        total = g + lo
        return 0.0 if total == 0 else 100.0 * g / total


class ATRStream:
    """TA-Lib ATR: true range from the 2nd bar, first ATR = mean of `period` true ranges, then Wilder."""

    def __init__(self, period: int = 14) -> None:
        self._w = _Wilder(period)
        self._prev_close: float | None = None

    def update(self, high: float, low: float, close: float) -> float:
        if self._prev_close is None:
            self._prev_close = close
            return math.nan
        pc = self._prev_close
        self._prev_close = close
        tr = max(high - low, abs(high - pc), abs(low - pc))
        return self._w.update(tr)
