"""The candle arrays a strategy's `generate` works on (moved out of base.py to keep one job per module)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("open_time", "open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class Bars:
    """The candle frame as float64 arrays (open_time int64 ms), what `generate` works on."""

    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    #: per-object memo of derived arrays shared by several strategies on the same candle (e.g. ATR for stops)
    cache: dict[Any, np.ndarray] = field(default_factory=dict, compare=False, repr=False)
    #: (symbol, interval) -> `informative.Informative` for the last row, attached by whoever evaluates a
    #: strategy that declares `informative` (the analyzer live, `signals()` offline, the bias checks)
    informative: dict[tuple[str, str], Any] = field(default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.close)

    def cached(self, key: Any, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """Compute once per Bars object: the live analyzer evaluates every strategy on one Bars per candle.
        Callers must treat the returned array as read-only."""
        v = self.cache.get(key)
        if v is None:
            v = self.cache[key] = compute()
        return v

    def inform(self, symbol: str, interval: str) -> Any:
        """The declared informative pair (an `Informative`: its closed candles and their row alignment)."""
        try:
            return self.informative[(symbol.upper(), interval)]
        except KeyError:
            raise KeyError(
                f"informative {symbol} {interval} not supplied: declare it in the strategy's `informative` "
                f"(supplied: {sorted(self.informative)})"
            ) from None

    def window(self, end: int, size: int) -> Bars:
        """Rows [end - size, end) as views: the trailing window that ends at row end - 1."""
        start = max(0, end - size)
        if start == 0 and end >= len(self):
            return self
        return Bars(
            open_time=self.open_time[start:end],
            open=self.open[start:end],
            high=self.high[start:end],
            low=self.low[start:end],
            close=self.close[start:end],
            volume=self.volume[start:end],
        )

    def tail(self, n: int) -> Bars:
        """The last `n` bars as views (no copy)."""
        if n >= len(self):
            return self
        return Bars(
            open_time=self.open_time[-n:],
            open=self.open[-n:],
            high=self.high[-n:],
            low=self.low[-n:],
            close=self.close[-n:],
            volume=self.volume[-n:],
        )

    @classmethod
    def views(
        cls,
        open_time: np.ndarray,
        open: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
    ) -> Bars:
        """`Bars(...)` with empty memos, built without the frozen dataclass's __init__ (which sets each field
        through object.__setattr__): the fast backtest builds one per candle, and that init was half its cost
        (2.6 us against 1.2). Same object: same fields, same type, still frozen against assignment."""
        b = object.__new__(cls)
        b.__dict__.update(
            open_time=open_time,
            open=open,
            high=high,
            low=low,
            close=close,
            volume=volume,
            cache={},
            informative={},
        )
        return b

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Bars:
        missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"candle frame is missing columns {missing}; need {list(REQUIRED_COLUMNS)}")
        cols = {c: np.ascontiguousarray(frame[c].to_numpy(dtype=np.float64)) for c in REQUIRED_COLUMNS[1:]}
        return cls(
            open_time=frame["open_time"].to_numpy(dtype=np.int64),
            open=cols["open"],
            high=cols["high"],
            low=cols["low"],
            close=cols["close"],
            volume=cols["volume"],
        )
