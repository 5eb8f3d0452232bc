"""Trend-following built-ins: moving-average crosses, momentum-line crosses, slopes, direction flips."""

from __future__ import annotations

from typing import Any

import numpy as np

from roottrading.indicators import (
    adx,
    atr,
    crossed_above,
    crossed_below,
    ema,
    hma,
    macd,
    minus_di,
    obv,
    plus_di,
    ppo_ema,
    shift,
    sma,
    supertrend,
    tema,
    trix,
)
from roottrading.strategies.base import Bars, BaseStrategy, Entries, grade
from roottrading.strategies.builtin._last import c_ema, crosses, last2, up_cross
from roottrading.strategies.params import Param, ParamError


def _fast_below_slow(values: dict[str, Any], fast: str = "fast", slow: str = "slow") -> None:
    if values[fast] >= values[slow]:
        raise ParamError(f"{fast} ({values[fast]}) must be smaller than {slow} ({values[slow]})")


def _atr_distance(bars: Bars, level: np.ndarray) -> np.ndarray:
    a = atr(bars.high, bars.low, bars.close, 14)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(bars.close - level) / a


class EmaCross(BaseStrategy):
    """BUY when the fast EMA crosses above the slow EMA, SELL when it crosses below.
    Strength: distance of the close from the slow EMA in ATRs (0.5 / 1 / 2)."""

    name = "ema_cross"
    fast = Param(12, 2, 100, 1)
    slow = Param(26, 3, 300, 1)

    def check_params(self, values: dict[str, Any]) -> None:
        _fast_below_slow(values)

    @property
    def warmup(self) -> int:
        return self.slow + 1

    def may_fire(self, bars: Bars) -> bool:
        return crosses(c_ema(bars, self.fast), c_ema(bars, self.slow))

    def generate(self, bars: Bars) -> Entries:
        f, s = ema(bars.close, self.fast), ema(bars.close, self.slow)
        return self.entries(
            crossed_above(f, s),
            crossed_below(f, s),
            grade(_atr_distance(bars, s), 0.5, 1.0, 2.0),
        )


class MacdCrossover(BaseStrategy):
    """BUY when MACD crosses above its signal line, SELL when below. Stronger when the buy cross
    happens below zero (sell above zero) and when |MACD| exceeds half an ATR."""

    name = "macd_crossover"
    fast = Param(12, 2, 50)
    slow = Param(26, 5, 100)
    signal = Param(9, 2, 50)

    def check_params(self, values: dict[str, Any]) -> None:
        _fast_below_slow(values)

    @property
    def warmup(self) -> int:
        return self.slow + self.signal

    def may_fire(self, bars: Bars) -> bool:
        line, sig, _ = macd(bars.close, self.fast, self.slow, self.signal)
        return crosses(line, sig)

    def generate(self, bars: Bars) -> Entries:
        line, sig, _ = macd(bars.close, self.fast, self.slow, self.signal)
        a = atr(bars.high, bars.low, bars.close, 14)
        with np.errstate(invalid="ignore"):
            big = (np.abs(line) > 0.5 * a).astype(np.int8)
            buy_st = 1 + (line < 0).astype(np.int8) + big
            sell_st = 1 + (line > 0).astype(np.int8) + big
        return self.entries(
            crossed_above(line, sig), crossed_below(line, sig), buy_strength=buy_st, sell_strength=sell_st
        )


class PpoCrossover(BaseStrategy):
    """BUY when the PPO (percent EMA spread) crosses above its signal EMA, SELL when below.
    Strength: |PPO| in percent (0.25 / 0.5 / 1)."""

    name = "ppo_crossover"
    fast = Param(12, 2, 50)
    slow = Param(26, 5, 100)
    signal = Param(9, 2, 50)

    def check_params(self, values: dict[str, Any]) -> None:
        _fast_below_slow(values)

    @property
    def warmup(self) -> int:
        return self.slow + self.signal

    def may_fire(self, bars: Bars) -> bool:
        line, sig, _ = ppo_ema(bars.close, self.fast, self.slow, self.signal)
        return crosses(line, sig)

    def generate(self, bars: Bars) -> Entries:
        line, sig, _ = ppo_ema(bars.close, self.fast, self.slow, self.signal)
        return self.entries(crossed_above(line, sig), crossed_below(line, sig), grade(np.abs(line), 0.25, 0.5, 1.0))


class TrixCrossover(BaseStrategy):
    """BUY when TRIX crosses above its signal EMA, SELL when below. Strength: |TRIX| (0.05 / 0.1 / 0.2 %)."""

    name = "trix_crossover"
    period = Param(15, 3, 60)
    signal = Param(9, 2, 30)

    @property
    def warmup(self) -> int:
        return 3 * self.period + self.signal

    def may_fire(self, bars: Bars) -> bool:
        t = trix(bars.close, self.period)
        return crosses(t, ema(t, self.signal))

    def generate(self, bars: Bars) -> Entries:
        t = trix(bars.close, self.period)
        s = ema(t, self.signal)
        return self.entries(crossed_above(t, s), crossed_below(t, s), grade(np.abs(t), 0.05, 0.1, 0.2))


def _slope_turns_last(ma: np.ndarray, close: np.ndarray) -> bool:
    """`up | down` of `_slope_turns` at the last row (needs >= 3 rows; callers are past warm-up)."""
    m0, m1, m2 = ma[-3:].tolist()
    c = float(close[-1])
    slope, prev = m2 - m1, m1 - m0
    return (slope > 0 and prev <= 0 and c > m2) or (slope < 0 and prev >= 0 and c < m2)


def _slope_turns(ma: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    slope = ma - shift(ma)
    prev = shift(slope)
    with np.errstate(invalid="ignore"):
        up = (slope > 0) & (prev <= 0) & (close > ma)
        down = (slope < 0) & (prev >= 0) & (close < ma)
    return up, down, slope


class TemaSlope(BaseStrategy):
    """BUY when the TEMA's slope turns up with the close above it; SELL when it turns down with the
    close below. Strength: the new slope in ATRs (0.1 / 0.25 / 0.5)."""

    name = "tema_slope"
    period = Param(20, 3, 100)

    @property
    def warmup(self) -> int:
        return 3 * self.period

    def may_fire(self, bars: Bars) -> bool:
        return _slope_turns_last(tema(bars.close, self.period), bars.close)

    def generate(self, bars: Bars) -> Entries:
        t = tema(bars.close, self.period)
        up, down, slope = _slope_turns(t, bars.close)
        with np.errstate(invalid="ignore", divide="ignore"):
            st = grade(np.abs(slope) / atr(bars.high, bars.low, bars.close, 14), 0.1, 0.25, 0.5)
        return self.entries(up, down, st)


class HullSlope(BaseStrategy):
    """BUY when the Hull MA's slope turns up with the close above it; SELL when it turns down with the
    close below. Strength: the new slope in ATRs (0.1 / 0.25 / 0.5)."""

    name = "hull_slope"
    period = Param(20, 4, 200)

    @property
    def warmup(self) -> int:
        return self.period + int(self.period**0.5) + 2

    def may_fire(self, bars: Bars) -> bool:
        return _slope_turns_last(hma(bars.close, self.period), bars.close)

    def generate(self, bars: Bars) -> Entries:
        h = hma(bars.close, self.period)
        up, down, slope = _slope_turns(h, bars.close)
        with np.errstate(invalid="ignore", divide="ignore"):
            st = grade(np.abs(slope) / atr(bars.high, bars.low, bars.close, 14), 0.1, 0.25, 0.5)
        return self.entries(up, down, st)


class AdxDirection(BaseStrategy):
    """With ADX >= `adx_min` (a trend exists): BUY when +DI crosses above -DI, SELL when -DI crosses
    above +DI; also when ADX rises through `adx_min` with the DIs already ordered.
    Strength: ADX level (30 / 40 / 50)."""

    name = "adx_direction"
    period = Param(14, 5, 50)
    adx_min = Param(25.0, 10.0, 50.0, 1.0)

    @property
    def warmup(self) -> int:
        return 2 * self.period + 1

    def may_fire(self, bars: Bars) -> bool:
        h, lo, c = bars.high, bars.low, bars.close
        a1, a0 = last2(adx(h, lo, c, self.period))
        if not a1 >= self.adx_min:  # `strong` is required on both sides (NaN is not strong)
            return False
        if up_cross(a1, a0, self.adx_min, self.adx_min):  # ADX rising through adx_min: generate decides
            return True
        p1, p0 = last2(plus_di(h, lo, c, self.period))
        m1, m0 = last2(minus_di(h, lo, c, self.period))
        return up_cross(p1, p0, m1, m0) or up_cross(m1, m0, p1, p0)

    def generate(self, bars: Bars) -> Entries:
        h, lo, c = bars.high, bars.low, bars.close
        a, p, m = adx(h, lo, c, self.period), plus_di(h, lo, c, self.period), minus_di(h, lo, c, self.period)
        rising = crossed_above(a, self.adx_min)
        with np.errstate(invalid="ignore"):
            strong = a >= self.adx_min
            buy = strong & (crossed_above(p, m) | (rising & (p > m)))
            sell = strong & (crossed_above(m, p) | (rising & (m > p)))
        return self.entries(buy, sell, grade(a, 30, 40, 50))


class SupertrendReversal(BaseStrategy):
    """BUY when Supertrend flips to up, SELL when it flips to down. The stop-loss is the Supertrend
    line itself. Strength: close's distance from the line in ATRs (1 / 2 / 3)."""

    name = "supertrend_reversal"
    period = Param(10, 3, 50)
    multiplier = Param(3.0, 1.0, 6.0, 0.5)

    @property
    def warmup(self) -> int:
        return self.period + 1

    def may_fire(self, bars: Bars) -> bool:
        _, d = supertrend(bars.high, bars.low, bars.close, self.period, self.multiplier)
        d1, d0 = last2(d)
        return d1 != d0 and d1 != 0.0 and d0 != 0.0

    def generate(self, bars: Bars) -> Entries:
        line, d = supertrend(bars.high, bars.low, bars.close, self.period, self.multiplier)
        prev = shift(d)
        buy, sell = (d == 1) & (prev == -1), (d == -1) & (prev == 1)
        return self.entries(
            buy,
            sell,
            grade(_atr_distance(bars, line), 1.0, 2.0, 3.0),
            stop_loss=np.where(buy | sell, line, np.nan),
        )


class ObvCrossover(BaseStrategy):
    """BUY when OBV crosses above its SMA (volume flowing in) and, if `confirm_price`, the close is
    above its own SMA; SELL on the mirror. Strength: MODERATE, STRONG with price confirmation."""

    name = "obv_crossover"
    period = Param(20, 3, 200)
    confirm_price = Param(True)

    @property
    def warmup(self) -> int:
        return self.period + 1

    def may_fire(self, bars: Bars) -> bool:
        o = obv(bars.close, bars.volume)
        return crosses(o, sma(o, self.period))

    def generate(self, bars: Bars) -> Entries:
        o = obv(bars.close, bars.volume)
        om = sma(o, self.period)
        cm = sma(bars.close, self.period)
        with np.errstate(invalid="ignore"):
            up_px, dn_px = bars.close > cm, bars.close < cm
        buy, sell = crossed_above(o, om), crossed_below(o, om)
        if self.confirm_price:
            buy, sell = buy & up_px, sell & dn_px
        return self.entries(buy, sell, np.where(self.confirm_price, 2, 1))


STRATEGIES = [
    EmaCross,
    MacdCrossover,
    PpoCrossover,
    TrixCrossover,
    TemaSlope,
    HullSlope,
    AdxDirection,
    SupertrendReversal,
    ObvCrossover,
]
