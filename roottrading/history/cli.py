"""`roottrading download-data`: fetch history from Binance REST, or import data.binance.vision files.

Examples:
  roottrading download-data --symbols BTCUSDT,ETHUSDT --interval 1m --start 2024-01-01 --end 2024-01-02
  roottrading download-data --import-csv 'BTCUSDT-1m-2024-*.zip' --parquet data/parquet --no-store
Dates are ISO (UTC when no offset) or epoch ms; start is inclusive, end exclusive (on open time).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from roottrading.exchange.binance.rest_market import RestMarketError
from roottrading.history.download import DownloadResult, download, import_monthly_csv
from roottrading.history.timeparse import parse_time

if TYPE_CHECKING:
    from roottrading.config import Settings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="roottrading download-data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--symbols", help="comma-separated, e.g. BTCUSDT,ETHUSDT (default: SYMBOLS setting)")
    p.add_argument("--interval", help="kline interval, e.g. 1m, 1h (default: INTERVAL setting)")
    p.add_argument("--start", help="ISO date/time or epoch ms (inclusive)")
    p.add_argument("--end", help="ISO date/time or epoch ms (exclusive; default: now)")
    p.add_argument("--rest-url", help="Binance REST base URL (default: BINANCE_REST_URL setting)")
    p.add_argument("--database-url", help="store to write (default: DATABASE_URL setting)")
    p.add_argument("--parquet", type=Path, metavar="DIR", help="also write <DIR>/<SYMBOL>_<interval>.parquet")
    p.add_argument("--no-store", action="store_true", help="do not write the database (needs --parquet)")
    p.add_argument(
        "--import-csv",
        nargs="+",
        metavar="FILES",
        help="data.binance.vision kline files (.zip/.csv, globs allowed) instead of downloading",
    )
    return p


def _fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str]) -> None:
    args = _parser().parse_args(argv)
    from roottrading.config import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        _fail(str(exc))
    if args.no_store and args.parquet is None:
        _fail("--no-store needs --parquet DIR (otherwise nothing is written)")
    try:
        result = asyncio.run(_run(args, settings))
    except (ValueError, RestMarketError) as exc:
        _fail(str(exc))
    for sym, n in result.counts.items():
        print(f"{sym}: {n} candles")
    if not args.no_store:
        print(f"stored {result.stored} rows in {args.database_url or settings.database_url}")
    for path in result.parquet_files:
        print(f"wrote {path}")


async def _run(args: argparse.Namespace, settings: Settings) -> DownloadResult:
    import time

    from roottrading.store import Database

    db = None if args.no_store else Database(args.database_url or settings.database_url)
    try:
        if db is not None:
            await db.migrate()
        symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()] if args.symbols else None
        if args.import_csv:
            sym = symbols[0] if symbols and len(symbols) == 1 else None
            return await import_monthly_csv(args.import_csv, sym, args.interval, to_store=db, to_parquet=args.parquet)
        if not args.start:
            raise ValueError("--start is required to download (e.g. --start 2024-01-01)")
        start = parse_time(args.start, name="--start")
        end = parse_time(args.end, name="--end") if args.end else time.time_ns() // 1_000_000
        return await download(
            symbols or settings.symbols,
            args.interval or settings.interval,
            start,
            end,
            rest_url=args.rest_url or settings.binance_rest_url,
            to_store=db,
            to_parquet=args.parquet,
        )
    finally:
        if db is not None:
            await db.close()
