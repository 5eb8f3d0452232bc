"""A fixed-size window of closed candles per symbol, kept as NumPy arrays (no pandas in the hot path)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from roottrading.domain import Candle
from roottrading.strategies.base import Bars

_FIELDS = ("open", "high", "low", "close", "volume")


class CandleWindow:
    """The last `size` closed candles of one symbol. Appending is O(1) amortised (a doubled buffer
    that is compacted when full), and `bars()` returns contiguous views without copying."""

    def __init__(self, size: int) -> None:
        if size < 2:
            raise ValueError("window size must be at least 2")
        self.size = size
        self._cap = size * 2
        self._t = np.zeros(self._cap, np.int64)
        self._v = np.zeros((5, self._cap), np.float64)
        self._start = 0
        self._end = 0
        self._dropped = False  # the last append pushed the oldest row out

    def __len__(self) -> int:
        return self._end - self._start

    @property
    def last_open_time(self) -> int | None:
        return int(self._t[self._end - 1]) if self._end > self._start else None

    def append(self, c: Candle) -> bool:
        """Add a closed candle; False (ignored) if it is not newer than the last one (redelivery)."""
        last = self.last_open_time
        if last is not None and c.open_time <= last:
            return False
        if self._end == self._cap:
            # keep `size` rows (not size - 1) so that undo_append can give the oldest one back
            keep = min(len(self), self.size)
            self._t[:keep] = self._t[self._end - keep : self._end]
            self._v[:, :keep] = self._v[:, self._end - keep : self._end]
            self._start, self._end = 0, keep
        self._t[self._end] = c.open_time
        self._v[:, self._end] = (c.open, c.high, c.low, c.close, c.volume)
        self._end += 1
        self._dropped = len(self) > self.size
        if self._dropped:
            self._start += 1
        return True

    def undo_append(self) -> None:
        """Take back the last `append` (its evaluation failed): the redelivered candle is then new again."""
        if self._end > self._start:
            self._end -= 1
            if self._dropped:
                self._start -= 1
            self._dropped = False

    def bars(self) -> Bars:
        s, e = self._start, self._end
        o, h, lo, c, v = self._v[:, s:e]
        return Bars(open_time=self._t[s:e], open=o, high=h, low=lo, close=c, volume=v)

    def frame(self) -> pd.DataFrame:
        b = self.bars()
        return pd.DataFrame(
            {
                "open_time": b.open_time,
                "open": b.open,
                "high": b.high,
                "low": b.low,
                "close": b.close,
                "volume": b.volume,
            }
        )
