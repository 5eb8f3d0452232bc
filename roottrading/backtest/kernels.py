"""Compiled loops of the `fast` engine (numba, no fastmath: IEEE float64 in the same order as the code they
stand in for, so a candidate set they produce is the one the live code would produce).

Why candidates and not decisions: the analyzer evaluates a strategy on a trailing window of closed candles
(roottrading.services.analyzer.engine.AnalyzerEngine.lookback), and recursive indicators (EMA, ATR) depend on
where that window starts. The kernels recompute each window's values exactly (TA-Lib's arithmetic), flag the
candles where a signal or an exit *may* happen (with a small slack, so they are a superset), and the fast
engine confirms each flagged candle with the platform's own code (the strategy's `latest_signal_bars` on the
same window, the trader's `walk_exits` in Decimal). A kernel can only make the engine look at a candle for
nothing; it never decides a trade.
"""

from __future__ import annotations

import numpy as np
from numba import njit

TIE = 1e-9  # roottrading.indicators.extra._TIE: the cross tolerance the strategies use
SLACK = 1e-12  # relative: widens every candidate test so that the candidate set is a superset


@njit(cache=True, nogil=True)
def _ema_last2(x: np.ndarray, s: int, e: int, period: int) -> tuple[float, float]:
    """TA-Lib EMA over x[s:e]: (value at e-2, value at e-1). Seed: sum of the first `period` values in order
    divided by the period, then prev = (x - prev) * k + prev, k = 2 / (period + 1)."""
    k = 2.0 / (period + 1)
    acc = 0.0
    for j in range(s, s + period):
        acc += x[j]
    prev = acc / period
    before = prev
    for j in range(s + period, e):
        before = prev
        prev = ((x[j] - prev) * k) + prev
    return before, prev


MAY_BUY = 1  # candidate side bits (ema_cross_candidate_sides): a BUY may fire here
MAY_SELL = 2  # a SELL may fire here


@njit(cache=True, nogil=True)
def ema_cross_candidate_sides(
    close: np.ndarray, fast: int, slow: int, lookback: int, warmup: int
) -> tuple[np.ndarray, np.ndarray]:
    """(indices, sides): the candles where `ema_cross` may fire on the analyzer's window ending at i (length
    min(i + 1, lookback), evaluated only when longer than the warm-up), and for each which signal may fire
    there (MAY_BUY: the widened crossed_above test holds, MAY_SELL: the widened crossed_below one). A superset
    of crossed_above / crossed_below at the window's last row: the tie tolerance is widened by SLACK both ways.
    The sides let the engine skip confirming a candidate whose only possible signal the simulation would
    ignore (a BUY while a cycle is open, a SELL while flat)."""
    n = len(close)
    out = np.empty(n, np.int64)
    sides = np.empty(n, np.int8)
    m = 0
    for i in range(n):
        length = min(i + 1, lookback)
        if length <= warmup:
            continue
        s = i + 1 - length
        a0, a1 = _ema_last2(close, s, i + 1, fast)
        b0, b1 = _ema_last2(close, s, i + 1, slow)
        t1 = TIE * abs(b1)
        t0 = TIE * abs(b0)
        w1 = SLACK * abs(b1) + 1e-300
        w0 = SLACK * abs(b0) + 1e-300
        up = a1 > b1 + t1 - w1 and a0 <= b0 + t0 + w0
        down = a1 < b1 - t1 + w1 and a0 >= b0 - t0 - w0
        if up or down:
            out[m] = i
            sides[m] = (MAY_BUY if up else 0) | (MAY_SELL if down else 0)
            m += 1
    return out[:m], sides[:m]


def ema_cross_candidates(close: np.ndarray, fast: int, slow: int, lookback: int, warmup: int) -> np.ndarray:
    """Indices i where `ema_cross` may fire (either side): see ema_cross_candidate_sides."""
    return ema_cross_candidate_sides(close, fast, slow, lookback, warmup)[0]


@njit(cache=True, nogil=True)
def first_exit_candidate(low: np.ndarray, high: np.ndarray, start: int, end: int, stop: float, target: float) -> int:
    """First index in [start, end) whose bar may meet the stop (low <= stop) or the target (high >= target),
    both widened by SLACK; `end` when none. NaN disables a level."""
    s_on = stop == stop
    t_on = target == target
    sl = stop * (1.0 + SLACK)
    tp = target * (1.0 - SLACK)
    for j in range(start, end):
        if s_on and low[j] <= sl:
            return j
        if t_on and high[j] >= tp:
            return j
    return end


@njit(cache=True, nogil=True)
def wilder_atr_pct(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    """The risk manager's ATR% after each candle (risk.state._Atr: true range, the plain mean of the first
    `period` ranges, then Wilder's smoothing), NaN until it exists. Used with a margin, never for equality."""
    n = len(close)
    out = np.full(n, np.nan)
    atr = np.nan
    acc = 0.0
    for i in range(n):
        hl = high[i] - low[i]
        if i == 0:
            tr = hl
        else:
            pc = close[i - 1]
            tr = max(hl, abs(high[i] - pc), abs(low[i] - pc))
        if i < period:
            acc += tr
            if i == period - 1:
                atr = acc / period
        else:
            atr = (atr * (period - 1) + tr) / period
        if atr == atr and close[i] > 0:
            out[i] = atr / close[i] * 100.0
    return out
