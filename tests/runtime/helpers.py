"""Loading recorded candles for tests (LEAN's Binance BTCUSDT 1h, Apache-2.0)."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from roottrading.domain import Candle


def lean_hourly_btcusdt(shared_data: Path) -> list[Candle]:
    """120 real Binance BTC/USDT 1h candles (2018-05-01..05). LEAN rows: 'yyyymmdd HH:MM,o,h,l,c,v'."""
    path = shared_data / "ohlcv/lean/binance/hour/btcusdt_trade.zip"
    with zipfile.ZipFile(path) as zf:
        text = zf.read(zf.namelist()[0]).decode()
    out = []
    for row in csv.reader(io.StringIO(text)):
        t = int(datetime.strptime(row[0], "%Y%m%d %H:%M").replace(tzinfo=UTC).timestamp() * 1000)
        o, h, lo, c, v = (float(x) for x in row[1:6])
        out.append(
            Candle(
                symbol="BTCUSDT",
                interval="1h",
                open_time=t,
                close_time=t + 3_599_999,
                open=o,
                high=h,
                low=lo,
                close=c,
                volume=v,
            )
        )
    return out
