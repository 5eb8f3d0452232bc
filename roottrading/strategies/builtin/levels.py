"""Price-level built-ins: bands, channels, breakouts, SAR, VWAP, support/resistance."""

from __future__ import annotations

import numpy as np

from roottrading.indicators import atr, bbands, donchian, highest, lowest, sar, shift, sma, vwap
from roottrading.strategies.base import Bars, BaseStrategy, Entries, grade
from roottrading.strategies.builtin._last import c_atr, c_highest, c_lowest, c_sma, div
from roottrading.strategies.params import Param


def _prior(x: np.ndarray) -> np.ndarray:
    """The level as it stood before this bar (a breakout compares with the previous bars only)."""
    return shift(x, 1)


class BollingerTouch(BaseStrategy):
    """BUY when the low touches or pierces the lower Bollinger band and the close is back inside;
    SELL when the high touches the upper band and the close is back inside.
    Strength: penetration beyond the band as a fraction of the band width (2% / 5% / 10%)."""

    name = "bollinger_touch"
    style = "reversal"
    period = Param(20, 5, 100)
    nbdev = Param(2.0, 1.0, 4.0, 0.25)

    @property
    def warmup(self) -> int:
        return self.period

    def may_fire(self, bars: Bars) -> bool:
        up, _, lo = bbands(bars.close, self.period, self.nbdev)
        u, d = float(up[-1]), float(lo[-1])
        h, low, c = float(bars.high[-1]), float(bars.low[-1]), float(bars.close[-1])
        return (low <= d and c > d) or (h >= u and c < u)

    def generate(self, bars: Bars) -> Entries:
        up, _, lo = bbands(bars.close, self.period, self.nbdev)
        width = up - lo
        with np.errstate(invalid="ignore", divide="ignore"):
            buy = (bars.low <= lo) & (bars.close > lo)
            sell = (bars.high >= up) & (bars.close < up)
            b_st = grade((lo - bars.low) / width, 0.02, 0.05, 0.1)
            s_st = grade((bars.high - up) / width, 0.02, 0.05, 0.1)
        return self.entries(buy, sell, buy_strength=b_st, sell_strength=s_st)


class DonchianBreakout(BaseStrategy):
    """BUY on the first close above the previous bar's Donchian upper channel (highest high of the
    prior `period` bars); SELL on the first close below the lower one. Strength: breakout distance
    in ATRs (0.25 / 0.5 / 1)."""

    name = "donchian_breakout"
    style = "breakout"
    period = Param(20, 5, 200)

    @property
    def warmup(self) -> int:
        return self.period + 1

    def may_fire(self, bars: Bars) -> bool:
        u0, u1 = c_highest(bars, "high", self.period)[-3:-1].tolist()  # the prior channel at rows -2, -1
        l0, l1 = c_lowest(bars, "low", self.period)[-3:-1].tolist()
        c0, c1 = bars.close[-2:].tolist()
        return (c1 > u1 and not c0 > u0) or (c1 < l1 and not c0 < l0)

    def generate(self, bars: Bars) -> Entries:
        up, _, lo = donchian(bars.high, bars.low, self.period)
        pu, pl = _prior(up), _prior(lo)
        c = bars.close
        a = atr(bars.high, bars.low, c, 14)
        with np.errstate(invalid="ignore", divide="ignore"):
            above, below = c > pu, c < pl
            buy = above & ~(shift(c) > shift(pu))
            sell = below & ~(shift(c) < shift(pl))
            st = grade(np.where(buy, c - pu, pl - c) / a, 0.25, 0.5, 1.0)
        return self.entries(buy, sell, st)


class AtrBreakout(BaseStrategy):
    """BUY when the close rises more than `mult` x ATR (as of the previous bar) above the previous
    close; SELL when it falls that much. Strength: the move in ATRs relative to `mult` (1.25x/1.5x/2x)."""

    name = "atr_breakout"
    style = "breakout"
    period = Param(14, 2, 100)
    mult = Param(1.5, 0.5, 5.0, 0.25)

    @property
    def warmup(self) -> int:
        return self.period + 2

    def may_fire(self, bars: Bars) -> bool:
        a = float(c_atr(bars, self.period)[-2])
        c0, c1 = bars.close[-2:].tolist()
        k = div(c1 - c0, a)
        return k > self.mult or k < -self.mult

    def generate(self, bars: Bars) -> Entries:
        a = _prior(atr(bars.high, bars.low, bars.close, self.period))
        move = bars.close - shift(bars.close)
        with np.errstate(invalid="ignore", divide="ignore"):
            k = move / a
            return self.entries(k > self.mult, k < -self.mult, grade(np.abs(k) / self.mult, 1.25, 1.5, 2.0))


class ParabolicSarBounce(BaseStrategy):
    """BUY when the Parabolic SAR flips from above the price to below it; SELL on the opposite flip.
    The stop-loss is the new SAR value. Strength: MODERATE, STRONG when the flip bar's range > 1 ATR."""

    name = "parabolic_sar_bounce"
    acceleration = Param(0.02, 0.005, 0.1, 0.005)
    maximum = Param(0.2, 0.05, 0.5, 0.05)

    @property
    def warmup(self) -> int:
        return 15

    def may_fire(self, bars: Bars) -> bool:
        s0, s1 = sar(bars.high, bars.low, self.acceleration, self.maximum)[-2:].tolist()
        h0, h1 = bars.high[-2:].tolist()
        l0, l1 = bars.low[-2:].tolist()
        return (s1 < l1 and s0 > h0) or (s1 > h1 and s0 < l0)

    def generate(self, bars: Bars) -> Entries:
        s = sar(bars.high, bars.low, self.acceleration, self.maximum)
        with np.errstate(invalid="ignore"):
            below = s < bars.low
            above = s > bars.high
            buy = below & (shift(s) > shift(bars.high))
            sell = above & (shift(s) < shift(bars.low))
            wide = (bars.high - bars.low) > atr(bars.high, bars.low, bars.close, 14)
        return self.entries(buy, sell, 1 + wide.astype(np.int8), stop_loss=np.where(buy | sell, s, np.nan))


class VwapSupportResistance(BaseStrategy):
    """Rolling VWAP (`window` bars) as support/resistance. BUY: previous close above VWAP, the low dips
    to VWAP and the close holds above it (support held). SELL: previous close below VWAP, the high
    reaches VWAP and the close stays below (resistance held). Strength: MODERATE, STRONG on
    above-average volume."""

    name = "vwap_support_resistance"
    style = "reversal"
    window = Param(20, 5, 500)

    @property
    def warmup(self) -> int:
        return self.window + 1

    def may_fire(self, bars: Bars) -> bool:
        v0, v1 = vwap(bars.high, bars.low, bars.close, bars.volume, window=self.window)[-2:].tolist()
        c0, c1 = bars.close[-2:].tolist()
        h, low = float(bars.high[-1]), float(bars.low[-1])
        return (c0 > v0 and low <= v1 and c1 > v1) or (c0 < v0 and h >= v1 and c1 < v1)

    def generate(self, bars: Bars) -> Entries:
        v = vwap(bars.high, bars.low, bars.close, bars.volume, window=self.window)
        pv, pc = shift(v), shift(bars.close)
        with np.errstate(invalid="ignore"):
            buy = (pc > pv) & (bars.low <= v) & (bars.close > v)
            sell = (pc < pv) & (bars.high >= v) & (bars.close < v)
            loud = bars.volume > sma(bars.volume, self.window)
        return self.entries(buy, sell, 1 + loud.astype(np.int8))


class RangeBreakout(BaseStrategy):
    """Range/support breakout: after `lookback` bars whose high-low range is under `max_range_pct` of
    price (a consolidation), BUY when the close breaks above the range high (resistance) on volume
    >= `vol_mult` x average, SELL when it breaks below the range low (support).
    Strength: the volume ratio (1.5x / 2x / 3x)."""

    name = "range_breakout"
    style = "breakout"
    lookback = Param(20, 5, 200)
    max_range_pct = Param(5.0, 0.5, 30.0, 0.5)
    vol_mult = Param(1.5, 1.0, 5.0, 0.25)

    @property
    def warmup(self) -> int:
        return self.lookback + 1

    def may_fire(self, bars: Bars) -> bool:
        hh = float(c_highest(bars, "high", self.lookback)[-2])
        ll = float(c_lowest(bars, "low", self.lookback)[-2])
        c = float(bars.close[-1])
        if not (c > hh or c < ll):
            return False
        avg_v = float(c_sma(bars, "volume", self.lookback)[-2])
        tight = div(hh - ll, ll) * 100 <= self.max_range_pct
        return tight and div(float(bars.volume[-1]), avg_v) >= self.vol_mult

    def generate(self, bars: Bars) -> Entries:
        hh, ll = _prior(highest(bars.high, self.lookback)), _prior(lowest(bars.low, self.lookback))
        avg_v = _prior(sma(bars.volume, self.lookback))
        c = bars.close
        with np.errstate(invalid="ignore", divide="ignore"):
            tight = (hh - ll) / ll * 100 <= self.max_range_pct
            ratio = bars.volume / avg_v
            loud = ratio >= self.vol_mult
            buy = tight & loud & (c > hh)
            sell = tight & loud & (c < ll)
        return self.entries(buy, sell, grade(ratio, 1.5, 2.0, 3.0))


class ResistanceRejection(BaseStrategy):
    """SELL when the bar tests resistance (high within `tolerance_pct` of, or above, the highest high
    of the prior `lookback` bars), closes back below it, bearish, with an upper wick >= `wick_ratio`
    of the bar's range. BUY on the mirror at support. Strength: wick share (0.6 / 0.7 / 0.8)."""

    name = "resistance_rejection"
    style = "reversal"
    lookback = Param(20, 5, 200)
    tolerance_pct = Param(0.2, 0.0, 2.0, 0.05)
    wick_ratio = Param(0.5, 0.2, 0.9, 0.05)

    @property
    def warmup(self) -> int:
        return self.lookback + 1

    def may_fire(self, bars: Bars) -> bool:
        res = float(c_highest(bars, "high", self.lookback)[-2])
        sup = float(c_lowest(bars, "low", self.lookback)[-2])
        o, h, lo, c = float(bars.open[-1]), float(bars.high[-1]), float(bars.low[-1]), float(bars.close[-1])
        tol = self.tolerance_pct / 100
        rng = h - lo
        return (h >= res * (1 - tol) and c < res and c < o and div(h - max(o, c), rng) >= self.wick_ratio) or (
            lo <= sup * (1 + tol) and c > sup and c > o and div(min(o, c) - lo, rng) >= self.wick_ratio
        )

    def generate(self, bars: Bars) -> Entries:
        res, sup = _prior(highest(bars.high, self.lookback)), _prior(lowest(bars.low, self.lookback))
        o, h, lo, c = bars.open, bars.high, bars.low, bars.close
        rng = h - lo
        tol = self.tolerance_pct / 100
        with np.errstate(invalid="ignore", divide="ignore"):
            upper = (h - np.maximum(o, c)) / rng
            lower = (np.minimum(o, c) - lo) / rng
            sell = (h >= res * (1 - tol)) & (c < res) & (c < o) & (upper >= self.wick_ratio)
            buy = (lo <= sup * (1 + tol)) & (c > sup) & (c > o) & (lower >= self.wick_ratio)
        return self.entries(
            buy, sell, buy_strength=grade(lower, 0.6, 0.7, 0.8), sell_strength=grade(upper, 0.6, 0.7, 0.8)
        )


STRATEGIES = [
    BollingerTouch,
    DonchianBreakout,
    AtrBreakout,
    ParabolicSarBounce,
    VwapSupportResistance,
    RangeBreakout,
    ResistanceRejection,
]
