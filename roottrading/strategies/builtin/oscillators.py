"""Oscillator built-ins: leave-the-extreme rebounds (RSI, stochastics, %R, CCI, Z-score) and ROC momentum."""

from __future__ import annotations

from typing import Any

import numpy as np

from roottrading.indicators import (
    cci,
    crossed_above,
    crossed_below,
    highest,
    lowest,
    roc,
    stoch,
    stochrsi,
    willr,
    zscore,
)
from roottrading.strategies.base import Bars, BaseStrategy, Entries, grade
from roottrading.strategies.builtin._last import c_rsi, down_cross, last2, leaves, up_cross
from roottrading.strategies.params import Param, ParamError


def _levels(values: dict[str, Any], low: str = "oversold", high: str = "overbought") -> None:
    if values[low] >= values[high]:
        raise ParamError(f"{low} ({values[low]}) must be below {high} ({values[high]})")


def _depth(x: np.ndarray, level: float, below: bool, lookback: int = 5) -> np.ndarray:
    """How far x went beyond `level` in the last `lookback` bars (0 if it did not)."""
    x = np.nan_to_num(x, nan=level)
    if below:
        return np.maximum(level - lowest(x, lookback), 0.0)
    return np.maximum(highest(x, lookback) - level, 0.0)


class _LevelRebound(BaseStrategy):
    """Shared rule: BUY when the oscillator crosses back above `oversold`, SELL when it crosses back
    below `overbought`. Strength: how deep it went past the level over the last 5 bars."""

    style = "reversal"
    depth_steps: tuple[float, float, float] = (5.0, 10.0, 20.0)

    def check_params(self, values: dict[str, Any]) -> None:
        _levels(values)

    def oscillator(self, bars: Bars) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def may_fire(self, bars: Bars) -> bool:
        return leaves(self.oscillator(bars), self.oversold, self.overbought)  # type: ignore[attr-defined]

    def generate(self, bars: Bars) -> Entries:
        x = self.oscillator(bars)
        lo, hi = self.oversold, self.overbought  # type: ignore[attr-defined]
        return self.entries(
            crossed_above(x, lo),
            crossed_below(x, hi),
            buy_strength=grade(_depth(x, lo, True), *self.depth_steps),
            sell_strength=grade(_depth(x, hi, False), *self.depth_steps),
        )


class RsiCross(_LevelRebound):
    """BUY when RSI crosses back above `oversold` (30), SELL when it crosses back below `overbought`
    (70). Strength: how deep RSI went past the level in the last 5 bars (5 / 10 / 20 points)."""

    name = "rsi_cross"
    period = Param(14, 2, 50)
    oversold = Param(30.0, 5.0, 50.0, 1.0)
    overbought = Param(70.0, 50.0, 95.0, 1.0)

    @property
    def warmup(self) -> int:
        return self.period + 1

    def oscillator(self, bars: Bars) -> np.ndarray:
        return c_rsi(bars, self.period)


class WilliamsRRebound(_LevelRebound):
    """BUY when Williams %R crosses back above `oversold` (-80), SELL when it crosses back below
    `overbought` (-20). Strength: depth past the level in the last 5 bars."""

    name = "williams_r_rebound"
    period = Param(14, 3, 50)
    oversold = Param(-80.0, -99.0, -50.0, 1.0)
    overbought = Param(-20.0, -50.0, -1.0, 1.0)

    @property
    def warmup(self) -> int:
        return self.period

    def oscillator(self, bars: Bars) -> np.ndarray:
        return willr(bars.high, bars.low, bars.close, self.period)


class CciReversal(_LevelRebound):
    """BUY when CCI crosses back above `oversold` (-100), SELL when it crosses back below `overbought`
    (+100). Strength: depth past the level in the last 5 bars (50 / 100 / 200)."""

    name = "cci_reversal"
    period = Param(20, 5, 100)
    oversold = Param(-100.0, -300.0, 0.0, 10.0)
    overbought = Param(100.0, 0.0, 300.0, 10.0)
    depth_steps = (50.0, 100.0, 200.0)

    @property
    def warmup(self) -> int:
        return self.period

    def oscillator(self, bars: Bars) -> np.ndarray:
        return cci(bars.high, bars.low, bars.close, self.period)


class StochRsiRebound(_LevelRebound):
    """BUY when StochRSI %K crosses back above `oversold` (20), SELL when it crosses back below
    `overbought` (80). Strength: depth past the level in the last 5 bars."""

    name = "stochrsi_rebound"
    period = Param(14, 3, 50)
    k_period = Param(14, 3, 50)
    oversold = Param(20.0, 1.0, 50.0, 1.0)
    overbought = Param(80.0, 50.0, 99.0, 1.0)

    @property
    def warmup(self) -> int:
        return self.period + self.k_period + 3

    def oscillator(self, bars: Bars) -> np.ndarray:
        return stochrsi(bars.close, self.period, self.k_period, 3)[0]


class ZscoreReversal(_LevelRebound):
    """Z-score extreme reversal: BUY when the close's Z-score (vs its SMA, in standard deviations)
    crosses back above -`threshold`, SELL when it crosses back below +`threshold`.
    Strength: how far beyond the threshold it went in the last 5 bars (0.5 / 1 / 1.5 sigma)."""

    name = "zscore_reversal"
    period = Param(20, 5, 200)
    threshold = Param(2.0, 0.5, 4.0, 0.25)
    depth_steps = (0.5, 1.0, 1.5)

    @property
    def oversold(self) -> float:
        return -self.threshold

    @property
    def overbought(self) -> float:
        return self.threshold

    def check_params(self, values: dict[str, Any]) -> None:
        pass

    @property
    def warmup(self) -> int:
        return self.period

    def oscillator(self, bars: Bars) -> np.ndarray:
        return zscore(bars.close, self.period)


class StochasticOversold(BaseStrategy):
    """BUY when slow %K crosses above %D while %D is below `oversold` (20); SELL when %K crosses
    below %D while %D is above `overbought` (80). Strength: how far %D is past the level (5/10/15)."""

    name = "stochastic_oversold"
    style = "reversal"
    k_period = Param(14, 3, 50)
    k_smooth = Param(3, 1, 10)
    d_period = Param(3, 1, 10)
    oversold = Param(20.0, 1.0, 50.0, 1.0)
    overbought = Param(80.0, 50.0, 99.0, 1.0)

    def check_params(self, values: dict[str, Any]) -> None:
        _levels(values)

    @property
    def warmup(self) -> int:
        return self.k_period + self.k_smooth + self.d_period

    def may_fire(self, bars: Bars) -> bool:
        k, d = stoch(bars.high, bars.low, bars.close, self.k_period, self.k_smooth, self.d_period)
        k1, k0 = last2(k)
        d1, d0 = last2(d)
        return (d1 < self.oversold and up_cross(k1, k0, d1, d0)) or (
            d1 > self.overbought and down_cross(k1, k0, d1, d0)
        )

    def generate(self, bars: Bars) -> Entries:
        k, d = stoch(bars.high, bars.low, bars.close, self.k_period, self.k_smooth, self.d_period)
        with np.errstate(invalid="ignore"):
            buy = crossed_above(k, d) & (d < self.oversold)
            sell = crossed_below(k, d) & (d > self.overbought)
        return self.entries(
            buy,
            sell,
            buy_strength=grade(self.oversold - d, 5, 10, 15),
            sell_strength=grade(d - self.overbought, 5, 10, 15),
        )


class RocThreshold(BaseStrategy):
    """Momentum: BUY when ROC(period) crosses above +`threshold` percent, SELL when it crosses below
    -`threshold`. Strength: |ROC| relative to the threshold (1.25x / 1.5x / 2x)."""

    name = "roc_threshold"
    period = Param(10, 2, 100)
    threshold = Param(2.0, 0.1, 50.0, 0.1)

    @property
    def warmup(self) -> int:
        return self.period + 1

    def may_fire(self, bars: Bars) -> bool:
        return leaves(roc(bars.close, self.period), self.threshold, -self.threshold)

    def generate(self, bars: Bars) -> Entries:
        r = roc(bars.close, self.period)
        t = self.threshold
        return self.entries(crossed_above(r, t), crossed_below(r, -t), grade(np.abs(r) / t, 1.25, 1.5, 2.0))


STRATEGIES = [
    RsiCross,
    StochasticOversold,
    StochRsiRebound,
    WilliamsRRebound,
    CciReversal,
    RocThreshold,
    ZscoreReversal,
]
