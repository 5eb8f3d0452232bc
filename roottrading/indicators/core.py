"""Indicators that TA-Lib has: thin wrappers that call TA-Lib itself.

Why wrap at all: callers get one import, keyword names that read well, float64 contiguous input
checked once (TA-Lib raises an obscure error on int or non-contiguous arrays), and tuples for the
multi-output functions. Conventions are exactly TA-Lib's: NaN for the lookback (warm-up) rows,
EMA seeded with the SMA of the first `period` values, Wilder smoothing for RSI/ATR/ADX, population
standard deviation for Bollinger bands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import talib

Array = np.ndarray


_RAW_NAMES = (
    "ADX",
    "ATR",
    "BBANDS",
    "CCI",
    "EMA",
    "MACD",
    "MAX",
    "MIN",
    "MINUS_DI",
    "NATR",
    "OBV",
    "PLUS_DI",
    "PPO",
    "ROC",
    "RSI",
    "SAR",
    "SMA",
    "STDDEV",
    "STOCH",
    "STOCHRSI",
    "TEMA",
    "TRANGE",
    "TRIX",
    "WILLR",
    "WMA",
)


class _Raw:
    """TA-Lib's functions without the pandas/polars dispatch wrapper (~1 us per call saved; the analyzer
    makes ~70 indicator calls per candle). Same C function, same results: inputs here are always
    float64 NumPy arrays (as_f64)."""

    def __getattr__(self, name: str) -> Any:  # only reached for names missing from _RAW_NAMES
        raise AttributeError(f"TA-Lib function {name} is not in _RAW_NAMES")

    def __init__(self) -> None:
        for n in _RAW_NAMES:
            f = getattr(talib, n)
            setattr(self, n, getattr(f, "__wrapped__", f))


_ta = _Raw()


def as_f64(values: Sequence[float] | Array, name: str = "input") -> Array:
    """A 1-D contiguous float64 copy-or-view; a clear error for anything else."""
    arr = np.ascontiguousarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _period(value: int, name: str = "period", minimum: int = 1) -> int:
    if int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def sma(close: Array, period: int = 20) -> Array:
    return _ta.SMA(as_f64(close, "close"), timeperiod=_period(period, minimum=2))


def ema(close: Array, period: int = 20) -> Array:
    """TA-Lib EMA: k = 2/(period+1), seeded with the SMA of the first `period` values."""
    return _ta.EMA(as_f64(close, "close"), timeperiod=_period(period, minimum=2))


def wma(close: Array, period: int = 20) -> Array:
    return _ta.WMA(as_f64(close, "close"), timeperiod=_period(period, minimum=2))


def tema(close: Array, period: int = 20) -> Array:
    return _ta.TEMA(as_f64(close, "close"), timeperiod=_period(period, minimum=2))


def trix(close: Array, period: int = 15) -> Array:
    """1-bar rate of change (percent) of a triple EMA."""
    return _ta.TRIX(as_f64(close, "close"), timeperiod=_period(period))


def rsi(close: Array, period: int = 14) -> Array:
    return _ta.RSI(as_f64(close, "close"), timeperiod=_period(period, minimum=2))


def stoch(
    high: Array, low: Array, close: Array, k_period: int = 14, k_smooth: int = 3, d_period: int = 3
) -> tuple[Array, Array]:
    """Slow stochastic (slow %K, slow %D), SMA smoothing as TA-Lib's default matype=0."""
    return _ta.STOCH(
        as_f64(high, "high"),
        as_f64(low, "low"),
        as_f64(close, "close"),
        fastk_period=_period(k_period),
        slowk_period=_period(k_smooth),
        slowk_matype=0,
        slowd_period=_period(d_period),
        slowd_matype=0,
    )


def stochrsi(close: Array, period: int = 14, k_period: int = 14, d_period: int = 3) -> tuple[Array, Array]:
    """TA-Lib STOCHRSI (fast %K, fast %D) on a 0..100 scale."""
    return _ta.STOCHRSI(
        as_f64(close, "close"),
        timeperiod=_period(period, minimum=2),
        fastk_period=_period(k_period),
        fastd_period=_period(d_period),
        fastd_matype=0,
    )


def willr(high: Array, low: Array, close: Array, period: int = 14) -> Array:
    return _ta.WILLR(
        as_f64(high, "high"), as_f64(low, "low"), as_f64(close, "close"), timeperiod=_period(period, minimum=2)
    )


def cci(high: Array, low: Array, close: Array, period: int = 20) -> Array:
    return _ta.CCI(
        as_f64(high, "high"), as_f64(low, "low"), as_f64(close, "close"), timeperiod=_period(period, minimum=2)
    )


def macd(close: Array, fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[Array, Array, Array]:
    """(macd, signal, histogram). TA-Lib aligns the fast EMA's seed with the slow one's."""
    return _ta.MACD(
        as_f64(close, "close"),
        fastperiod=_period(fast, "fast", 2),
        slowperiod=_period(slow, "slow", 2),
        signalperiod=_period(signal, "signal"),
    )


def ppo(close: Array, fast: int = 12, slow: int = 26) -> Array:
    """TA-Lib PPO with matype=0 (SMA!), as TA-Lib's default; see ppo_ema for the StockCharts form."""
    return _ta.PPO(
        as_f64(close, "close"), fastperiod=_period(fast, "fast", 2), slowperiod=_period(slow, "slow", 2), matype=0
    )


def ppo_ema(close: Array, fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[Array, Array, Array]:
    """StockCharts-style PPO: 100*(EMAfast-EMAslow)/EMAslow with TA-Lib EMAs, plus signal and histogram."""
    c = as_f64(close, "close")
    slow_ema = ema(c, slow)
    with np.errstate(divide="ignore", invalid="ignore"):
        line = 100.0 * (ema(c, fast) - slow_ema) / slow_ema
    sig = ema(line, signal)
    return line, sig, line - sig


def roc(close: Array, period: int = 10) -> Array:
    return _ta.ROC(as_f64(close, "close"), timeperiod=_period(period))


def bbands(close: Array, period: int = 20, nbdev: float = 2.0) -> tuple[Array, Array, Array]:
    """(upper, middle, lower): SMA +- nbdev * population standard deviation."""
    return _ta.BBANDS(
        as_f64(close, "close"),
        timeperiod=_period(period, minimum=2),
        nbdevup=float(nbdev),
        nbdevdn=float(nbdev),
        matype=0,
    )


def stddev(close: Array, period: int = 20) -> Array:
    """Population standard deviation (ddof=0), as TA-Lib."""
    return _ta.STDDEV(as_f64(close, "close"), timeperiod=_period(period, minimum=2), nbdev=1.0)


def trange(high: Array, low: Array, close: Array) -> Array:
    return _ta.TRANGE(as_f64(high, "high"), as_f64(low, "low"), as_f64(close, "close"))


def atr(high: Array, low: Array, close: Array, period: int = 14) -> Array:
    return _ta.ATR(as_f64(high, "high"), as_f64(low, "low"), as_f64(close, "close"), timeperiod=_period(period))


def natr(high: Array, low: Array, close: Array, period: int = 14) -> Array:
    """ATR as a percentage of close: the volatility measure comparable across symbols."""
    return _ta.NATR(as_f64(high, "high"), as_f64(low, "low"), as_f64(close, "close"), timeperiod=_period(period))


def adx(high: Array, low: Array, close: Array, period: int = 14) -> Array:
    return _ta.ADX(
        as_f64(high, "high"), as_f64(low, "low"), as_f64(close, "close"), timeperiod=_period(period, minimum=2)
    )


def plus_di(high: Array, low: Array, close: Array, period: int = 14) -> Array:
    return _ta.PLUS_DI(as_f64(high, "high"), as_f64(low, "low"), as_f64(close, "close"), timeperiod=_period(period))


def minus_di(high: Array, low: Array, close: Array, period: int = 14) -> Array:
    return _ta.MINUS_DI(as_f64(high, "high"), as_f64(low, "low"), as_f64(close, "close"), timeperiod=_period(period))


def sar(high: Array, low: Array, acceleration: float = 0.02, maximum: float = 0.2) -> Array:
    return _ta.SAR(as_f64(high, "high"), as_f64(low, "low"), acceleration=float(acceleration), maximum=float(maximum))


def obv(close: Array, volume: Array) -> Array:
    """TA-Lib OBV: starts at volume[0] (StockCharts starts at 0; they differ by a constant)."""
    return _ta.OBV(as_f64(close, "close"), as_f64(volume, "volume"))


def highest(values: Array, period: int) -> Array:
    return _ta.MAX(as_f64(values), timeperiod=_period(period, minimum=2))


def lowest(values: Array, period: int) -> Array:
    return _ta.MIN(as_f64(values), timeperiod=_period(period, minimum=2))
