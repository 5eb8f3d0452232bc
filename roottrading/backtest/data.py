"""History for a backtest: where it comes from, and whether it is fit to trade on.

Sources (`--data`):
  store            the platform's database (DATABASE_URL), table market_data (what `download-data` stores)
  bundled          the small real datasets shipped in roottrading/datasets (tests, a first try)
  DIR              a folder: <SYMBOL>_<interval>.parquet as `download-data --parquet DIR` writes, else Binance's
                   monthly/daily kline files in it (SYMBOL-interval-*.zip|csv, as on data.binance.vision)
  FILE|GLOB        Binance kline files (.zip/.csv), e.g. 'BTCUSDT-1m-2024-*.zip' (symbol/interval from the names)

Every source gives each symbol's candles with start <= open_time < end, as found (unsorted, duplicates kept):
the data-quality gate (`check_quality`) looks at them as they are, reports gaps, duplicates, non-monotonic
candles and OHLC inconsistencies, and `clean` makes them a series the engines can trust (sorted, duplicates
dropped) once the user allowed it (`--allow-gaps`). No candles at all for a symbol is a `MissingData` error
naming the `roottrading download-data` command that fetches them.
"""

from __future__ import annotations

import glob
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from roottrading.domain import Candle, interval_ms

MAX_LISTED = 20  # issues listed per kind and symbol; the counts are always complete


class MissingData(LookupError):
    """No candles for a symbol/interval/period in the source; the message names the download command."""


def _day(ms: int) -> str:
    d = datetime.fromtimestamp(ms / 1000, UTC)
    return d.strftime("%Y-%m-%d") if d.hour == d.minute == d.second == 0 else d.strftime("%Y-%m-%dT%H:%M")


def fmt_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def download_command(symbols: Sequence[str], interval: str, start_ms: int, end_ms: int, data: str) -> str:
    """The exact `download-data` command that fetches what is missing, into the source the backtest reads."""
    cmd = (
        f"roottrading download-data --symbols {','.join(symbols)} --interval {interval} "
        f"--start {_day(start_ms)} --end {_day(end_ms)}"
    )
    if data not in ("store", "bundled") and Path(data).is_dir():
        cmd += f" --parquet {data} --no-store"
    return cmd


# ---- loading -------------------------------------------------------------------------------------------
async def load_history(
    data: str, symbols: Sequence[str], interval: str, start_ms: int, end_ms: int, *, database_url: str | None = None
) -> dict[str, list[Candle]]:
    """Each symbol's candles with start <= open_time < end from `data` (see the module docstring).
    Raises MissingData (with the download command) when a symbol has none, ValueError on an unusable source."""
    interval_ms(interval)
    if end_ms <= start_ms:
        raise ValueError(f"the end ({fmt_time(end_ms)}) must be after the start ({fmt_time(start_ms)})")
    out: dict[str, list[Candle]] = {}
    for sym in symbols:
        if data == "store":
            got = await _from_store(database_url, sym, interval, start_ms, end_ms)
        elif data == "bundled":
            got = _from_bundled(sym, interval)
        else:
            got = _from_path(data, sym, interval)
        out[sym] = [c for c in got if start_ms <= c.open_time < end_ms]
    missing = [s for s, cs in out.items() if not cs]
    if missing:
        where = f"the store ({database_url})" if data == "store" else data
        msg = (
            f"no {interval} candles for {', '.join(missing)} between {fmt_time(start_ms)} and {fmt_time(end_ms)} "
            f"in {where}. Fetch them with:\n  {download_command(missing, interval, start_ms, end_ms, data)}"
        )
        if data == "bundled":
            from roottrading.datasets import available

            msg += f"\n(bundled datasets: {', '.join(f'{s} {i}' for s, i in available())})"
        raise MissingData(msg)
    return out


async def _from_store(url: str | None, symbol: str, interval: str, start: int, end: int) -> list[Candle]:
    from roottrading.store import CandleRepo, Database

    if not url:
        raise ValueError("--data store needs DATABASE_URL")
    db = Database(url)
    try:
        await db.migrate()
        return await CandleRepo(db).range(symbol, interval, start, end - 1)
    finally:
        await db.close()


def _from_bundled(symbol: str, interval: str) -> list[Candle]:
    from roottrading.datasets import available, load_candles

    if (symbol, interval) not in available():
        return []
    return load_candles(symbol, interval)


def _from_path(data: str, symbol: str, interval: str) -> list[Candle]:
    from roottrading.history.download import infer_symbol_interval, parquet_path, read_parquet

    p = Path(data)
    if p.is_dir():
        pq = parquet_path(p, symbol, interval)
        if pq.is_file():
            return read_parquet(pq, symbol, interval)
        files = sorted(
            f
            for f in p.iterdir()
            if f.suffix.lower() in (".zip", ".csv") and f.name.startswith(f"{symbol}-{interval}-")
        )
        return _read_kline_files(files, symbol, interval)
    text = str(data)
    matches = sorted(glob.glob(text)) if any(ch in text for ch in "*?[") else ([text] if p.is_file() else [])
    if not matches:
        raise ValueError(
            f"--data {data}: not 'store', 'bundled', a folder, or existing kline files (.zip/.csv, globs allowed)"
        )
    files = []
    for f in map(Path, matches):
        try:
            sym, iv = infer_symbol_interval(f)
        except ValueError:
            continue
        if sym == symbol and iv == interval:
            files.append(f)
    return _read_kline_files(files, symbol, interval)


def _read_kline_files(files: Sequence[Path], symbol: str, interval: str) -> list[Candle]:
    from roottrading.exchange.binance.parse import ParseError, read_kline_csv
    from roottrading.history.download import _csv_lines

    out: list[Candle] = []
    for f in files:
        for lines in _csv_lines(f):
            try:
                out.extend(read_kline_csv(lines, symbol, interval))
            except ParseError as exc:
                raise ValueError(f"{f}: {exc.reason}") from None
    return out


# ---- the data-quality gate -----------------------------------------------------------------------------
@dataclass
class QualityReport:
    """What is wrong with the history, per symbol and kind (gap, duplicate, non_monotonic, ohlc)."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    issues: list[str] = field(default_factory=list)  # human lines, at most MAX_LISTED per kind and symbol

    @property
    def ok(self) -> bool:
        return not any(n for per in self.counts.values() for n in per.values())

    def summary(self) -> str:
        parts = []
        for sym, per in sorted(self.counts.items()):
            bad = [f"{n} {kind.replace('_', '-')}" for kind, n in per.items() if n]
            if bad:
                parts.append(f"{sym}: {', '.join(bad)}")
        return "; ".join(parts) or "no issue"


def check_quality(
    candles: Mapping[str, Sequence[Candle]], interval: str, start_ms: int | None = None, end_ms: int | None = None
) -> QualityReport:
    """Look at each symbol's candles as the source gave them. Gaps: a missing candle between two present ones,
    and (with start/end) missing candles before the first or after the last. Counts are candles (a gap of 3
    missing candles counts 3), duplicates and non-monotonic steps are counted per candle."""
    step = interval_ms(interval)
    rep = QualityReport()
    listed: dict[tuple[str, str], int] = {}
    for sym, cs in candles.items():
        per = {"gap": 0, "duplicate": 0, "non_monotonic": 0, "ohlc": 0}
        rep.counts[sym] = per

        def note(kind: str, text: str, n: int = 1, _sym: str = sym, _per: dict[str, int] = per) -> None:
            _per[kind] += n
            shown = listed.setdefault((_sym, kind), 0)
            if shown < MAX_LISTED:
                rep.issues.append(f"{_sym} {kind.replace('_', '-')}: {text}")
            elif shown == MAX_LISTED:
                rep.issues.append(f"{_sym} {kind.replace('_', '-')}: ... (more not listed)")
            listed[(_sym, kind)] = shown + 1

        seen: set[int] = set()
        prev: int | None = None
        for c in cs:
            t = c.open_time
            if t in seen:
                note("duplicate", f"candle {fmt_time(t)} appears more than once")
            elif prev is not None and t < prev:
                note("non_monotonic", f"candle {fmt_time(t)} comes after {fmt_time(prev)}")
            seen.add(t)
            prices = (c.open, c.high, c.low, c.close)
            if any(not math.isfinite(x) or x <= 0 for x in prices) or not math.isfinite(c.volume) or c.volume < 0:
                note("ohlc", f"candle {fmt_time(t)} has a non-positive or missing price/volume {prices} v={c.volume}")
            elif c.high < max(c.open, c.close, c.low) or c.low > min(c.open, c.close, c.high):
                note(
                    "ohlc",
                    f"candle {fmt_time(t)}: high {c.high} / low {c.low} do not contain open {c.open} / close {c.close}",
                )
            prev = t if prev is None else max(prev, t)
        times = sorted(seen)
        for a, b in itertools.pairwise(times):
            if b - a > step:
                n = (b - a) // step - 1
                note("gap", f"{n} candle(s) missing after {fmt_time(a)} (next {fmt_time(b)})", max(n, 1))
        if times and start_ms is not None:
            first_due = start_ms + (-start_ms) % step  # the first open time on the interval's grid
            if times[0] - first_due >= step:
                n = (times[0] - first_due) // step
                note("gap", f"{n} candle(s) missing at the start: data begins {fmt_time(times[0])}", n)
        if times and end_ms is not None:
            last_due = end_ms - step - (end_ms - step) % step
            if last_due - times[-1] >= step:
                n = (last_due - times[-1]) // step
                note("gap", f"{n} candle(s) missing at the end: data stops {fmt_time(times[-1])}", n)
    return rep


def clean(candles: Mapping[str, Sequence[Candle]]) -> dict[str, list[Candle]]:
    """Sorted by open time, one candle per open time (the last one the source gave wins)."""
    out = {}
    for sym, cs in candles.items():
        by_time = {c.open_time: c for c in cs}
        out[sym] = [by_time[t] for t in sorted(by_time)]
    return out
