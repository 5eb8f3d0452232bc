"""Download and import of historical candles.

Why both sinks: the store (market_data) warms strategies and serves charts; Parquet files are what
backtests and notebooks read fast. Writes are idempotent (upsert by (symbol, interval, open_time); Parquet
files merged and de-duplicated by open_time), so re-running a download never duplicates anything.
"""

from __future__ import annotations

import glob
import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import structlog

from roottrading.domain import Candle, interval_ms
from roottrading.exchange.binance.parse import ParseError, read_kline_csv
from roottrading.exchange.binance.rest_market import BinanceMarketRest
from roottrading.store import Database
from roottrading.store.repos_market import CandleRepo

log = structlog.get_logger(__name__)

_FIELDS = ["open_time", "close_time", "open", "high", "low", "close", "volume", "quote_volume", "trades"]
_SCHEMA = pa.schema(
    [
        ("open_time", pa.int64()),
        ("close_time", pa.int64()),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("volume", pa.float64()),
        ("quote_volume", pa.float64()),
        ("trades", pa.int64()),
    ]
)
_NAME_RE = re.compile(r"^([A-Z0-9]+)-(\d+[mhdwM])-")


@dataclass
class DownloadResult:
    """Candles got per symbol, and where they went."""

    counts: dict[str, int] = field(default_factory=dict)
    stored: int = 0
    parquet_files: list[Path] = field(default_factory=list)


def parquet_path(directory: Path, symbol: str, interval: str) -> Path:
    return Path(directory) / f"{symbol.upper()}_{interval}.parquet"


def write_parquet(directory: Path, symbol: str, interval: str, candles: Sequence[Candle]) -> Path:
    """Merge candles into `<dir>/<SYMBOL>_<interval>.parquet` (new values win on the same open_time)."""
    path = parquet_path(directory, symbol, interval)
    path.parent.mkdir(parents=True, exist_ok=True)
    merged: dict[int, Candle] = {c.open_time: c for c in read_parquet(path, symbol, interval)} if path.exists() else {}
    merged.update((c.open_time, c) for c in candles)
    rows = [merged[t] for t in sorted(merged)]
    table = pa.table({f: [getattr(c, f) for c in rows] for f in _FIELDS}, schema=_SCHEMA)
    pq.write_table(table, path)
    return path


def read_parquet(path: Path, symbol: str, interval: str) -> list[Candle]:
    """Candles from a file written by `write_parquet`, oldest first."""
    cols = pq.read_table(path).to_pydict()
    n = len(cols["open_time"])
    return [Candle(symbol=symbol.upper(), interval=interval, **{f: cols[f][i] for f in _FIELDS}) for i in range(n)]


async def _sink(
    candles: list[Candle],
    symbol: str,
    interval: str,
    to_store: Database | None,
    to_parquet: Path | None,
    result: DownloadResult,
) -> None:
    if to_store is not None and candles:
        result.stored += await CandleRepo(to_store).upsert(candles)
    if to_parquet is not None and candles:
        path = write_parquet(to_parquet, symbol, interval, candles)
        if path not in result.parquet_files:
            result.parquet_files.append(path)


async def download(
    symbols: Sequence[str],
    interval: str,
    start: int,
    end: int,
    *,
    rest_url: str,
    to_store: Database | None = None,
    to_parquet: Path | None = None,
    rest: BinanceMarketRest | None = None,
) -> DownloadResult:
    """Closed candles with start <= open_time < end (UTC ms) for each symbol, via paginated REST klines
    (weight-aware, waits out 429/418). A candle still in progress at the server's time is left out."""
    interval_ms(interval)
    if end <= start:
        raise ValueError(f"end ({end}) must be after start ({start})")
    if not symbols:
        raise ValueError("no symbols given")
    client = rest or BinanceMarketRest(rest_url)
    result = DownloadResult()
    try:
        now = await client.server_time()
        for sym in (s.upper() for s in symbols):
            candles = [c for c in await client.klines(sym, interval, start, end - 1) if c.close_time < now]
            result.counts[sym] = len(candles)
            await _sink(candles, sym, interval, to_store, to_parquet, result)
            log.info("history.downloaded", symbol=sym, interval=interval, candles=len(candles))
    finally:
        if rest is None:
            await client.aclose()
    return result


def _csv_lines(path: Path) -> list[list[str]]:
    """Lines of each CSV in a data.binance.vision file (.zip holding one CSV, or a plain .csv)."""
    if path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if n.lower().endswith(".csv")]
                if not names:
                    raise ValueError(f"{path}: the zip holds no .csv file")
                return [io.TextIOWrapper(zf.open(n), encoding="utf-8").read().splitlines() for n in names]
        except zipfile.BadZipFile:
            raise ValueError(f"{path}: not a valid zip file") from None
    return [path.read_text(encoding="utf-8").splitlines()]


def _expand(path_or_glob: str | Path | Sequence[str | Path]) -> list[Path]:
    items = [path_or_glob] if isinstance(path_or_glob, (str, Path)) else list(path_or_glob)
    out: list[Path] = []
    for item in items:
        text = str(item)
        matches = sorted(glob.glob(text)) if any(ch in text for ch in "*?[") else [text]
        if not matches:
            raise ValueError(f"no file matches {text!r}")
        for p in matches:
            if not Path(p).is_file():
                raise ValueError(f"{p}: no such file")
            out.append(Path(p))
    return out


def infer_symbol_interval(path: Path) -> tuple[str, str]:
    """data.binance.vision names files like BTCUSDT-1m-2024-01.zip."""
    m = _NAME_RE.match(path.name)
    if not m:
        raise ValueError(
            f"{path.name}: cannot infer symbol/interval from the name "
            "(expected e.g. BTCUSDT-1m-2024-01.zip); pass them explicitly"
        )
    return m.group(1), m.group(2)


async def import_monthly_csv(
    path_or_glob: str | Path | Sequence[str | Path],
    symbol: str | None = None,
    interval: str | None = None,
    *,
    to_store: Database | None = None,
    to_parquet: Path | None = None,
) -> DownloadResult:
    """Import Binance's public kline files (data.binance.vision monthly/daily, .zip or .csv; ms or us
    timestamps, with or without a header). Symbol/interval default to what the file name says."""
    if to_store is None and to_parquet is None:
        raise ValueError("nothing to import into: give to_store and/or to_parquet")
    result = DownloadResult()
    for path in _expand(path_or_glob):
        sym, iv = (symbol, interval) if symbol and interval else infer_symbol_interval(path)
        sym, iv = (symbol or sym).upper(), interval or iv
        interval_ms(iv)
        candles: list[Candle] = []
        for lines in _csv_lines(path):
            try:
                candles.extend(read_kline_csv(lines, sym, iv))
            except ParseError as exc:
                raise ValueError(f"{path}: {exc.reason}") from None
        result.counts[sym] = result.counts.get(sym, 0) + len(candles)
        await _sink(candles, sym, iv, to_store, to_parquet, result)
        log.info("history.imported", file=str(path), symbol=sym, interval=iv, candles=len(candles))
    return result
