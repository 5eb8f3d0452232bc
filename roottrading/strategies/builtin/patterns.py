"""Pattern built-ins: multi-timeframe confluence, spike reaction, liquidity sweep, pump/dump fade."""

from __future__ import annotations

import numpy as np

from roottrading.indicators import atr, crossed_above, crossed_below, ema, highest, lowest, rsi, shift, sma
from roottrading.strategies.base import Bars, BaseStrategy, Entries, grade
from roottrading.strategies.builtin._last import c_atr, c_highest, c_lowest, c_rsi, c_sma, div, leaves
from roottrading.strategies.params import Param
from roottrading.strategies.timeframes import align, resample_factor


class MtfConfluence(BaseStrategy):
    """Multi-timeframe confluent entry. The higher timeframe (`htf_factor` base bars per bar, built
    from the base candles, only complete bars) gives the trend: its close above its EMA(`htf_ema`)
    = up. On the base timeframe, BUY when RSI(`rsi_period`) crosses above 50 in an up trend; SELL
    when it crosses below 50 in a down trend. Strength: MODERATE, STRONG when the higher-timeframe
    RSI agrees (> 55 / < 45), VERY_STRONG when the base close is also on the right side of its EMA."""

    name = "mtf_confluence"
    timeframes = ()  # the higher timeframe is resampled from the base candles (htf_factor)
    htf_factor = Param(12, 2, 96, doc="base bars per higher-timeframe bar (5m x 12 = 1h)")
    htf_ema = Param(20, 3, 200)
    rsi_period = Param(14, 2, 50)

    @property
    def warmup(self) -> int:
        return self.htf_factor * (self.htf_ema + 1) + self.rsi_period

    def may_fire(self, bars: Bars) -> bool:
        """Both sides need the base RSI crossing 50 on the last bar; the resampling waits for that."""
        if len(bars) < 2 * self.htf_factor:
            return False
        return leaves(c_rsi(bars, self.rsi_period), 50.0, 50.0)

    def generate(self, bars: Bars) -> Entries:
        n = len(bars)
        if n < 2 * self.htf_factor:
            z = np.zeros(n, bool)
            return self.entries(z, z)
        htf, idx = resample_factor(bars, self.htf_factor)
        h_close = align(htf.close, idx)
        h_ema = align(ema(htf.close, self.htf_ema), idx) if len(htf) > self.htf_ema else np.full(n, np.nan)
        h_rsi = align(rsi(htf.close, self.rsi_period), idx) if len(htf) > self.rsi_period else np.full(n, np.nan)
        r = rsi(bars.close, self.rsi_period)
        base_ema = ema(bars.close, self.htf_ema)
        with np.errstate(invalid="ignore"):
            up, down = h_close > h_ema, h_close < h_ema
            buy = up & crossed_above(r, 50.0)
            sell = down & crossed_below(r, 50.0)
            b_st = 1 + (h_rsi > 55).astype(np.int8) + ((h_rsi > 55) & (bars.close > base_ema)).astype(np.int8)
            s_st = 1 + (h_rsi < 45).astype(np.int8) + ((h_rsi < 45) & (bars.close < base_ema)).astype(np.int8)
        return self.entries(buy, sell, buy_strength=b_st, sell_strength=s_st)


class SpikeReaction(BaseStrategy):
    """A spike bar moves >= `spike_atr` ATRs (ATR as of the bar before) on volume >= `vol_mult` x its
    average. React on the next bar: after a down spike, BUY if that bar closes above the spike's
    midpoint (buyers absorbed it); after an up spike, SELL if it closes below the midpoint.
    Strength: spike size in ATRs (3 / 4 / 6)."""

    name = "spike_reaction"
    style = "reversal"
    spike_atr = Param(2.5, 1.0, 10.0, 0.25)
    vol_mult = Param(2.0, 1.0, 10.0, 0.5)
    period = Param(14, 2, 100)

    @property
    def warmup(self) -> int:
        return self.period + 3

    def may_fire(self, bars: Bars) -> bool:
        """Both sides need a spike on the previous bar (sizes against the ATR and volume before it)."""
        a = float(c_atr(bars, self.period)[-3])
        avg_v = float(c_sma(bars, "volume", self.period)[-3])
        size = div(float(bars.close[-2]) - float(bars.open[-2]), a)
        return abs(size) >= self.spike_atr and float(bars.volume[-2]) >= self.vol_mult * avg_v

    def generate(self, bars: Bars) -> Entries:
        o, h, lo, c, v = bars.open, bars.high, bars.low, bars.close, bars.volume
        a = shift(atr(h, lo, c, self.period))
        avg_v = shift(sma(v, self.period))
        with np.errstate(invalid="ignore", divide="ignore"):
            size = (c - o) / a
            spike = (np.abs(size) >= self.spike_atr) & (v >= self.vol_mult * avg_v)
            prev_spike, prev_size = shift(spike.astype(np.float64)) == 1, shift(size)
            mid = shift((h + lo) / 2)
            buy = prev_spike & (prev_size < 0) & (c > mid)
            sell = prev_spike & (prev_size > 0) & (c < mid)
        return self.entries(buy, sell, grade(np.abs(prev_size), 3.0, 4.0, 6.0))


class LiquiditySweep(BaseStrategy):
    """Stop hunt: the low pierces the lowest low of the prior `lookback` bars (where stops sit) but
    the bar closes back above that level, in its upper half -> BUY. Mirror above the highest high
    -> SELL. Stop-loss just beyond the sweep's extreme. Strength: the sweep depth in ATRs
    (0.25 / 0.5 / 1)."""

    name = "liquidity_sweep"
    style = "reversal"
    lookback = Param(20, 5, 200)

    @property
    def warmup(self) -> int:
        return self.lookback + 1

    def may_fire(self, bars: Bars) -> bool:
        sup = float(c_lowest(bars, "low", self.lookback)[-2])
        res = float(c_highest(bars, "high", self.lookback)[-2])
        h, lo, c = float(bars.high[-1]), float(bars.low[-1]), float(bars.close[-1])
        return (lo < sup and c > sup) or (h > res and c < res)

    def generate(self, bars: Bars) -> Entries:
        h, lo, c = bars.high, bars.low, bars.close
        sup, res = shift(lowest(lo, self.lookback)), shift(highest(h, self.lookback))
        mid = (h + lo) / 2
        a = atr(h, lo, c, 14)
        with np.errstate(invalid="ignore", divide="ignore"):
            buy = (lo < sup) & (c > sup) & (c > mid)
            sell = (h > res) & (c < res) & (c < mid)
            depth = np.where(buy, sup - lo, h - res) / a
        sl = np.where(buy, lo - 0.1 * a, np.where(sell, h + 0.1 * a, np.nan))
        return self.entries(buy, sell, grade(depth, 0.25, 0.5, 1.0), stop_loss=sl)


class PumpDump(BaseStrategy):
    """Fade pumps and dumps. A pump: the close rose >= `move_pct` percent over `window` bars with
    average volume over those bars >= `vol_mult` x the volume of the `window` bars before. SELL on
    the first bar after a pump (within `window` bars) that closes below the previous bar's low
    (exhaustion). Mirror for a dump -> BUY above the previous high. Strength: the move relative to
    `move_pct` (1.5x / 2x / 3x)."""

    name = "pump_dump"
    style = "reversal"
    window = Param(5, 2, 50)
    move_pct = Param(8.0, 1.0, 100.0, 0.5)
    vol_mult = Param(3.0, 1.0, 20.0, 0.5)

    @property
    def warmup(self) -> int:
        return 2 * self.window + 2

    def may_fire(self, bars: Bars) -> bool:
        """Both sides need a reversal bar and a pump or dump (|move| >= move_pct) in the `window` bars before."""
        w = self.window
        c, h, lo = bars.close, bars.high, bars.low
        c1 = float(c[-1])
        if not (c1 < float(lo[-2]) or c1 > float(h[-2])):
            return False
        closes = c[-2 * w - 2 :].tolist()  # rows n-2w-2 .. n-1; move at row i needs the close w rows back
        n = len(closes)
        for i in range(n - 1 - w, n - 1):  # rows -1-w .. -2
            move = (div(closes[i], closes[i - w]) - 1.0) * 100.0
            if move >= self.move_pct or move <= -self.move_pct:
                return True
        return False

    def generate(self, bars: Bars) -> Entries:
        w = self.window
        c, h, lo, v = bars.close, bars.high, bars.low, bars.volume
        with np.errstate(invalid="ignore", divide="ignore"):
            move = (c / shift(c, w) - 1.0) * 100.0
            vol_now, vol_before = sma(v, w), shift(sma(v, w), w)
            surge = vol_now >= self.vol_mult * vol_before
            pump = surge & (move >= self.move_pct)
            dump = surge & (move <= -self.move_pct)
            recent_pump = highest(shift(pump.astype(np.float64)), w) == 1
            recent_dump = highest(shift(dump.astype(np.float64)), w) == 1
            peak_move = highest(np.nan_to_num(shift(np.abs(move))), w)
            sell = recent_pump & (c < shift(lo))
            buy = recent_dump & (c > shift(h))
        # only the first reversal bar after an episode
        sell &= ~(shift(sell.astype(np.float64), 1) == 1)
        buy &= ~(shift(buy.astype(np.float64), 1) == 1)
        return self.entries(buy, sell, grade(peak_move / self.move_pct, 1.5, 2.0, 3.0))


STRATEGIES = [MtfConfluence, SpikeReaction, LiquiditySweep, PumpDump]
