"""Loader for the bundled real candle files (roottrading/datasets/data/*.csv.gz)."""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import msgspec

from roottrading.domain import Candle, interval_ms

DATA_DIR = Path(__file__).parent / "data"


@dataclass(frozen=True)
class DatasetInfo:
    symbol: str
    interval: str
    source: str
    note: str = ""


_DATASETS: dict[tuple[str, str], DatasetInfo] = {
    ("BTCBUSD", "1m"): DatasetInfo(
        "BTCBUSD",
        "1m",
        "QuantConnect/Lean Data/crypto/binance/minute/btcbusd/20221213_trade.zip (Apache-2.0)",
        "Binance BTC/BUSD, 2022-12-13, 1,440 candles. BTC/BUSD, not BTC/USDT: pass as_symbol='BTCUSDT' to "
        "present it under another name in a demo.",
    ),
    ("BTCUSDT", "1h"): DatasetInfo(
        "BTCUSDT",
        "1h",
        "QuantConnect/Lean Data/crypto/binance/hour/btcusdt_trade.zip (Apache-2.0)",
        "Binance BTC/USDT, 2018-05-01 00:00 .. 2018-05-05 23:00, 120 candles.",
    ),
    ("BTCUSDT", "1d"): DatasetInfo(
        "BTCUSDT",
        "1d",
        "DaveSkender/Stock.Indicators tests/indicators/_testdata/quotes/bitcoin.csv (Apache-2.0)",
        "Binance BTC/USDT daily 2017-08-17 .. 2021-01-13, 1,246 candles; dates shifted +1 day to Binance's.",
    ),
}


def available() -> list[tuple[str, str]]:
    """(symbol, interval) pairs that `load_candles` can return."""
    return sorted(_DATASETS)


def dataset_info(symbol: str, interval: str) -> DatasetInfo:
    try:
        return _DATASETS[(symbol.upper(), interval)]
    except KeyError:
        raise ValueError(f"no bundled dataset {symbol}/{interval}; available: {available()}") from None


@cache
def _load(symbol: str, interval: str) -> tuple[Candle, ...]:
    step = interval_ms(interval)
    out = []
    with gzip.open(DATA_DIR / f"{symbol}_{interval}.csv.gz", "rt") as fh:
        next(fh)  # header
        for line in fh:
            t, o, h, lo, c, v = line.rstrip("\n").split(",")
            ot = int(t)
            out.append(
                Candle(
                    symbol=symbol,
                    interval=interval,
                    open_time=ot,
                    close_time=ot + step - 1,
                    open=float(o),
                    high=float(h),
                    low=float(lo),
                    close=float(c),
                    volume=float(v),
                )
            )
    return tuple(out)


def load_candles(symbol: str, interval: str, *, as_symbol: str | None = None) -> list[Candle]:
    """Closed candles of a bundled dataset, oldest first. `as_symbol` relabels them (demo only)."""
    info = dataset_info(symbol, interval)
    candles = _load(info.symbol, info.interval)
    if as_symbol is None or as_symbol == info.symbol:
        return list(candles)
    return [msgspec.structs.replace(c, symbol=as_symbol.upper()) for c in candles]
