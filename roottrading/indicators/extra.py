"""Indicators TA-Lib lacks, built on TA-Lib pieces so their warm-up follows the same convention.

Conventions (documented because other libraries differ):
- hma: Hull MA = WMA(2*WMA(n//2) - WMA(n), floor(sqrt(n))), TA-Lib WMA throughout.
- vwap: cumulative typical-price VWAP; `window=n` gives the rolling form (the `ta` library's
  default, window 14, NaN until the window is full); `anchor` resets the sum at each new session.
- supertrend: hl2 +- multiplier * ATR (TA-Lib/Wilder ATR), usual final-band carry rules.
- donchian: highest high / lowest low over `period` bars including the current bar (TA-Lib MAX/MIN).
- zscore: (close - SMA) / population stddev, NaN where the deviation is 0.
"""

from __future__ import annotations

import math

import numpy as np

from roottrading.indicators.core import Array, _period, as_f64, atr, highest, lowest, sma, stddev, wma


def hma(close: Array, period: int = 20) -> Array:
    n = _period(period, minimum=4)
    c = as_f64(close, "close")
    raw = 2.0 * wma(c, n // 2) - wma(c, n)
    return wma(raw, max(2, math.isqrt(n)))


def typical_price(high: Array, low: Array, close: Array) -> Array:
    return (as_f64(high, "high") + as_f64(low, "low") + as_f64(close, "close")) / 3.0


def vwap(
    high: Array, low: Array, close: Array, volume: Array, window: int | None = None, anchor: Array | None = None
) -> Array:
    """Volume-weighted average of the typical price.

    window: None = cumulative from the start (or from each anchor change), n = rolling n bars.
    anchor: optional integer array (e.g. open_time // 86_400_000 for daily sessions); the sum
    restarts whenever it changes. Rows with zero cumulative volume are NaN.
    """
    tp = typical_price(high, low, close)
    v = as_f64(volume, "volume")
    pv = tp * v
    if window is not None:
        n = _period(window, "window")
        csum_pv = np.cumsum(pv)
        csum_v = np.cumsum(v)
        spv = csum_pv.copy()
        sv = csum_v.copy()
        spv[n:] = csum_pv[n:] - csum_pv[:-n]
        sv[n:] = csum_v[n:] - csum_v[:-n]
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(sv > 0, spv / sv, np.nan)
        out[: n - 1] = np.nan
        return out
    if anchor is None:
        cpv, cv = np.cumsum(pv), np.cumsum(v)
    else:
        a = np.asarray(anchor)
        if a.shape != tp.shape:
            raise ValueError("anchor must have the same length as the prices")
        starts = np.r_[True, a[1:] != a[:-1]]
        group = np.cumsum(starts) - 1
        cpv, cv = np.cumsum(pv), np.cumsum(v)
        first = np.flatnonzero(starts)
        base_pv = np.r_[0.0, cpv][first][group]
        base_v = np.r_[0.0, cv][first][group]
        cpv, cv = cpv - base_pv, cv - base_v
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(cv > 0, cpv / cv, np.nan)


def supertrend(high: Array, low: Array, close: Array, period: int = 10, multiplier: float = 3.0) -> tuple[Array, Array]:
    """(line, direction): direction +1 = uptrend (line is the lower band), -1 = downtrend; NaN/0 in warm-up."""
    h, lo, c = as_f64(high, "high"), as_f64(low, "low"), as_f64(close, "close")
    a = atr(h, lo, c, period)
    hl2 = (h + lo) / 2.0
    basic_up = hl2 + multiplier * a
    basic_dn = hl2 - multiplier * a
    n = len(c)
    line = np.full(n, np.nan)
    direction = np.zeros(n)
    valid = np.flatnonzero(~np.isnan(a))
    if valid.size == 0:
        return line, direction
    start = int(valid[0])
    # Python floats in the loop (NumPy scalar indexing costs ~10x more); the same IEEE operations
    bu_l, bd_l, c_l = basic_up.tolist(), basic_dn.tolist(), c.tolist()
    up, dn = bu_l[start], bd_l[start]
    d = 1.0 if c_l[start] >= float(hl2[start]) else -1.0
    line_l: list[float] = [math.nan] * n
    dir_l: list[float] = [0.0] * n
    line_l[start], dir_l[start] = (dn if d > 0 else up), d
    for i in range(start + 1, n):
        bu, bd, ci, cp = bu_l[i], bd_l[i], c_l[i], c_l[i - 1]
        up = bu if (bu < up or cp > up) else up
        dn = bd if (bd > dn or cp < dn) else dn
        if d > 0 and ci < dn:
            d = -1.0
        elif d < 0 and ci > up:
            d = 1.0
        line_l[i] = dn if d > 0 else up
        dir_l[i] = d
    line = np.array(line_l, np.float64)
    direction = np.array(dir_l, np.float64)
    return line, direction


def donchian(high: Array, low: Array, period: int = 20) -> tuple[Array, Array, Array]:
    """(upper, middle, lower) over the last `period` bars including the current one."""
    up = highest(as_f64(high, "high"), period)
    dn = lowest(as_f64(low, "low"), period)
    return up, (up + dn) / 2.0, dn


def zscore(close: Array, period: int = 20) -> Array:
    c = as_f64(close, "close")
    sd = stddev(c, period)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, (c - sma(c, period)) / sd, np.nan)


def shift(values: Array, n: int = 1) -> Array:
    """values[i - n] at row i (NaN for the first n rows): the previous bar, without look-ahead."""
    v = as_f64(values)
    out = np.full_like(v, np.nan)
    if n < len(v):
        out[n:] = v[: len(v) - n] if n > 0 else v
    return out


_TIE = 1e-9  # relative: two series equal up to rounding were touching, not already crossed


def crossed_above(a: Array, b: Array | float) -> Array:
    """True where a moved from <= b on the previous bar to > b on this bar (NaN never crosses).

    Values within 1e-9 relative of each other are a tie: two series pinned together (e.g. both at
    an extreme in a flat market) that then separate do count as a cross, and rounding noise
    between equal series does not. (Slices, not shifted copies: this runs for every strategy on
    every candle.)
    """
    return _crossed(as_f64(a), b, above=True)


def crossed_below(a: Array, b: Array | float) -> Array:
    return _crossed(as_f64(a), b, above=False)


def _crossed(a: np.ndarray, b: Array | float, *, above: bool) -> np.ndarray:
    n = len(a)
    out = np.zeros(n, bool)
    if n < 2:
        return out
    with np.errstate(invalid="ignore"):
        if np.isscalar(b):
            bf = float(b)  # type: ignore[arg-type]
            hi, lo = bf + _TIE * abs(bf), bf - _TIE * abs(bf)
            if above:
                out[1:] = (a[1:] > hi) & (a[:-1] <= hi)
            else:
                out[1:] = (a[1:] < lo) & (a[:-1] >= lo)
            return out
        bb = as_f64(b)  # type: ignore[arg-type]  # not a scalar here: np.isscalar does not narrow the type
        tol = _TIE * np.abs(bb)
        if above:
            edge = bb + tol
            out[1:] = (a[1:] > edge[1:]) & (a[:-1] <= edge[:-1])
        else:
            edge = bb - tol
            out[1:] = (a[1:] < edge[1:]) & (a[:-1] >= edge[:-1])
    return out
