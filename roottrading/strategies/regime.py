""" "Ride or React": detect the market regime and adapt signals to it.

Regime per row, computed from closed bars only (no look-ahead):
- trend: ADX(14) >= `trend_adx` -> TREND_UP when +DI > -DI, TREND_DOWN otherwise; else RANGE.
- volatility: percentile of NATR(14) (ATR as % of price) within the last `vol_lookback` bars:
  >= `high_pct` HIGH, <= `low_pct` LOW, else NORMAL. Percentiles make it comparable across symbols.

Adaptation ("ride" the trend, "react" in ranges), by strategy style:
- TREND regime: trend-following/breakout signals in the trend's direction +1 strength; any signal
  against the trend -1. RANGE regime: reversal signals +1; trend/breakout signals -1.
- HIGH volatility: reversal signals -1 (fading a violent move is catching a knife); LOW volatility:
  breakout signals -1 (breakouts from dead markets fail more often).
- A signal pushed below WEAK is dropped. Strength is capped at VERY_STRONG.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from roottrading.indicators import adx, minus_di, natr, plus_di

if TYPE_CHECKING:
    from roottrading.strategies.base import Bars

TREND_UP, RANGE, TREND_DOWN = 1, 0, -1
VOL_LOW, VOL_NORMAL, VOL_HIGH = -1, 0, 1
_TREND_NAMES = {TREND_UP: "TREND_UP", RANGE: "RANGE", TREND_DOWN: "TREND_DOWN"}
_VOL_NAMES = {VOL_LOW: "LOW_VOL", VOL_NORMAL: "NORMAL_VOL", VOL_HIGH: "HIGH_VOL"}


@dataclass(frozen=True)
class RegimeFrame:
    trend: np.ndarray  # int8: +1 up, -1 down, 0 range (also 0 in warm-up)
    volatility: np.ndarray  # int8: -1 low, 0 normal, +1 high
    adx: np.ndarray
    natr: np.ndarray

    def labels(self) -> np.ndarray:
        """e.g. 'TREND_UP/HIGH_VOL' per row (object array), the value put in Signal.regime."""
        return np.array(
            [f"{_TREND_NAMES[int(t)]}/{_VOL_NAMES[int(v)]}" for t, v in zip(self.trend, self.volatility, strict=True)],
            dtype=object,
        )

    def label(self, i: int = -1) -> str:
        return f"{_TREND_NAMES[int(self.trend[i])]}/{_VOL_NAMES[int(self.volatility[i])]}"


def detect_regime(
    bars: Bars | pd.DataFrame,
    period: int = 14,
    trend_adx: float = 25.0,
    vol_lookback: int = 100,
    high_pct: float = 0.8,
    low_pct: float = 0.2,
) -> RegimeFrame:
    if isinstance(bars, pd.DataFrame):
        from roottrading.strategies.base import Bars as _Bars

        bars = _Bars.from_frame(bars)
    h, lo, c = bars.high, bars.low, bars.close
    n = len(c)
    if n <= 2 * period:
        nan = np.full(n, np.nan)
        return RegimeFrame(np.zeros(n, np.int8), np.zeros(n, np.int8), nan, nan)
    a = adx(h, lo, c, period)
    pdi, mdi = plus_di(h, lo, c, period), minus_di(h, lo, c, period)
    with np.errstate(invalid="ignore"):
        trending = a >= trend_adx
        trend = np.where(trending & (pdi > mdi), TREND_UP, np.where(trending & (pdi <= mdi), TREND_DOWN, RANGE))
    nat = natr(h, lo, c, period)
    pct = pd.Series(nat).rolling(vol_lookback, min_periods=max(10, period)).rank(pct=True).to_numpy()
    with np.errstate(invalid="ignore"):
        vol = np.where(pct >= high_pct, VOL_HIGH, np.where(pct <= low_pct, VOL_LOW, VOL_NORMAL))
    return RegimeFrame(trend.astype(np.int8), vol.astype(np.int8), a, nat)


def adapt(side: np.ndarray, strength: np.ndarray, regime: RegimeFrame, style: str) -> tuple[np.ndarray, np.ndarray]:
    """New (side, strength) arrays with the Ride-or-React rules applied (see module docstring)."""
    side = np.asarray(side, np.int8)
    delta = np.zeros(len(side), np.int16)
    t, v = regime.trend, regime.volatility
    active = side != 0
    in_trend = t != RANGE
    follows = style in ("trend", "breakout")
    with_trend = in_trend & (side == t)
    against = in_trend & (side == -t)
    if follows:
        delta += np.where(with_trend, 1, 0).astype(np.int16)
    delta -= against.astype(np.int16)
    if style == "reversal":
        delta += (~in_trend).astype(np.int16)
        delta -= (v == VOL_HIGH).astype(np.int16)
    elif follows:
        delta -= (~in_trend).astype(np.int16)
    if style == "breakout":
        delta -= (v == VOL_LOW).astype(np.int16)
    new = np.asarray(strength, np.int16) + delta
    out_side = np.where(active & (new >= 0), side, 0).astype(np.int8)
    return out_side, np.clip(new, 0, 3).astype(np.int8)
