"""Vectorised indicators over float64 NumPy arrays (NaN during warm-up), TA-Lib conventions.

Everything TA-Lib has is computed by TA-Lib itself (`core`); the rest (`extra`) is built from
TA-Lib pieces. `streaming` holds the incremental forms used live.
"""

from roottrading.indicators.core import (
    adx,
    as_f64,
    atr,
    bbands,
    cci,
    ema,
    highest,
    lowest,
    macd,
    minus_di,
    natr,
    obv,
    plus_di,
    ppo,
    ppo_ema,
    roc,
    rsi,
    sar,
    sma,
    stddev,
    stoch,
    stochrsi,
    tema,
    trange,
    trix,
    willr,
    wma,
)
from roottrading.indicators.extra import (
    crossed_above,
    crossed_below,
    donchian,
    hma,
    shift,
    supertrend,
    typical_price,
    vwap,
    zscore,
)
from roottrading.indicators.streaming import ATRStream, EMAStream, RollingFrame, RSIStream, SMAStream

__all__ = [
    "ATRStream", "EMAStream", "RSIStream", "RollingFrame", "SMAStream", "adx", "as_f64", "atr", "bbands",
    "cci", "crossed_above", "crossed_below", "donchian", "ema", "highest", "hma", "lowest", "macd",
    "minus_di", "natr", "obv", "plus_di", "ppo", "ppo_ema", "roc", "rsi", "sar", "shift", "sma", "stddev",
    "stoch", "stochrsi", "supertrend", "tema", "trange", "trix", "typical_price", "vwap", "willr", "wma",
    "zscore",
]
