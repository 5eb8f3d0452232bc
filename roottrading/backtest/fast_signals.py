"""The `fast` engine's signals: the strategy on the analyzer's trailing window, confirmed where it may fire.

Why a module of its own: the simulation (fast.py) asks for signals lazily, one candidate candle at a time, and
only when the answer can matter to it. A strategy is evaluated on the window the analyzer gives it
(AnalyzerEngine.lookback over the candles seen so far; the replay starts with empty windows). For `ema_cross`
(without ride_or_react) a compiled kernel (kernels.py) recomputes every window's EMAs with TA-Lib's arithmetic
and flags the candles where a cross may happen, and which side; every other strategy is a candidate on every
candle, either side. Either way the signal itself (side, strength, stops) comes from the strategy's own
`latest_signal_bars` on that window: the kernel only decides where to look.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from roottrading.backtest.kernels import MAY_BUY, MAY_SELL
from roottrading.domain import Candle, Signal

EITHER = MAY_BUY | MAY_SELL


class SignalSource:
    """Candle arrays plus the strategy: candidate candles (with the sides that may fire) and the signal at one.
    `sided`: the candidates come from a kernel that knows their sides (worth confirming lazily); otherwise
    every candle is a candidate of either side."""

    sided: bool

    def __init__(self, series: Sequence[Candle], strategy: Any, lookback: int, symbol: str, interval: str):
        self.strategy, self.lookback, self.symbol, self.interval = strategy, lookback, symbol, interval
        n = len(series)
        self.open_time = np.fromiter((c.open_time for c in series), np.int64, n)
        cols = np.array([(c.open, c.high, c.low, c.close, c.volume) for c in series], np.float64).reshape(n, 5)
        self.o, self.h, self.lo, self.c, self.v = (np.ascontiguousarray(cols[:, k]) for k in range(5))
        self.index, self.sides = self._candidates()

    def _candidates(self) -> tuple[np.ndarray, np.ndarray]:
        """(candle indices, side bits) where the strategy may signal, past its warm-up."""
        st = self.strategy
        if st.name == "ema_cross" and not st.ride_or_react and type(st).__name__ == "EmaCross":
            from roottrading.backtest.kernels import ema_cross_candidate_sides

            self.sided = True
            return ema_cross_candidate_sides(self.c, int(st.fast), int(st.slow), self.lookback, int(st.warmup))
        self.sided = False  # no side known before a candidate is confirmed
        n = len(self.c)
        first = 0  # the first window longer than the warm-up: min(i + 1, lookback) > warmup
        while first < n and min(first + 1, self.lookback) <= st.warmup:
            first += 1
        index = np.arange(first, n, dtype=np.int64)
        return index, np.full(len(index), EITHER, np.int8)

    def bars(self, i: int) -> Any:
        """The analyzer's window ending at candle i (views, no copy)."""
        from roottrading.strategies.base import Bars

        s = max(0, i + 1 - self.lookback)
        e = i + 1
        return Bars.views(
            open_time=self.open_time[s:e],
            open=self.o[s:e],
            high=self.h[s:e],
            low=self.lo[s:e],
            close=self.c[s:e],
            volume=self.v[s:e],
        )

    def at(self, i: int) -> Signal | None:
        """The strategy's signal at candle i (i a candidate, so past the warm-up)."""
        sig: Signal | None = self.strategy.latest_signal_bars(self.bars(i), self.symbol, self.interval)
        return sig

    def in_range(self, lo: int = 0, hi: int | None = None) -> dict[int, Signal]:
        """Every signal at the candles in [lo, hi) (all when not given), either side."""
        hi = len(self.c) if hi is None else hi
        a, b = np.searchsorted(self.index, [lo, hi])
        out: dict[int, Signal] = {}
        for i in self.index[a:b].tolist():
            sig = self.at(i)
            if sig is not None:
                out[i] = sig
        return out
