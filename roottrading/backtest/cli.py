"""`roottrading backtest`: a strategy on history through the platform's own services, with a report.

Examples:
  roottrading backtest --strategy ema_cross --symbols BTCUSDT --interval 1h --data bundled --report bt.html
  roottrading backtest --strategy ema_cross --param ema_cross.fast=9 --symbols BTCUSDT,ETHUSDT --interval 1m \\
      --start 2024-01-01 --end 2024-02-01 --data data/parquet --set coordinator.risk_pct=0.5 --json bt.json

Errors for the user (bad option, unknown setting, missing data, refused data) exit with status 2 and one
message; Ctrl-C stops the run, writes the partial result (JSON, report, store) and exits with 130.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer

from roottrading.backtest.model import BacktestConfig, BacktestResult

DAY_MS = 86_400_000


def _fail(msg: str) -> typer.Exit:
    typer.echo(f"error: {msg}", err=True)
    return typer.Exit(2)


def _parse_params(items: list[str]) -> dict[str, dict[str, Any]]:
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        name, dot, param = key.strip().partition(".")
        if not sep or not dot or not name or not param:
            raise _fail(f"--param {item!r}: expected NAME.KEY=VALUE, e.g. ema_cross.fast=9")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        out.setdefault(name, {})[param] = parsed
    return out


def _resolve_strategies(given: list[str], settings: Any) -> tuple[str, ...]:
    from roottrading.strategies.loader import load_strategies

    known = load_strategies(settings.strategies_dir).strategies
    names = [n.strip() for g in given for n in g.split(",") if n.strip()] or list(settings.strategies) or sorted(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise _fail(f"--strategy: unknown {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return tuple(dict.fromkeys(names))


def _period(start: str | None, end: str | None, days: float | None) -> tuple[int, int, bool]:
    """(start_ms, end_ms, explicit). No period at all: everything the source holds."""
    from roottrading.history.timeparse import parse_time

    try:
        end_ms = parse_time(end, name="--end") if end else None
        start_ms = parse_time(start, name="--start") if start else None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if days is not None:
        if days <= 0:
            raise _fail("--days must be > 0")
        if start_ms is not None and end_ms is None:
            end_ms = start_ms + int(days * DAY_MS)
        else:
            end_ms = end_ms if end_ms is not None else time.time_ns() // 1_000_000
            if start_ms is None:
                start_ms = end_ms - int(days * DAY_MS)
    explicit = start_ms is not None or end_ms is not None
    return (start_ms or 0), (end_ms if end_ms is not None else time.time_ns() // 1_000_000), explicit


class _Progress:
    """A rich progress bar with ETA on a terminal, a plain line every ~10 % otherwise. Raises
    KeyboardInterrupt from the engine's progress callback once Ctrl-C was pressed (the engine stops cleanly)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.stop_requested = False
        self.tty = sys.stderr.isatty()
        self._bar: Any = None
        self._task: Any = None
        self._next_pct = 10
        self._t0 = time.perf_counter()

    def __enter__(self) -> _Progress:
        if self.enabled and self.tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("backtest"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("candles"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)

    def __call__(self, done: int, total: int) -> None:
        if self.stop_requested:
            raise KeyboardInterrupt
        if not self.enabled:
            return
        if self._bar is not None:
            if self._task is None:
                self._task = self._bar.add_task("run", total=total)
            self._bar.update(self._task, completed=done)
            return
        pct = 100 * done // max(total, 1)
        if pct >= self._next_pct or done == total:
            rate = done / max(time.perf_counter() - self._t0, 1e-9)
            eta = (total - done) / rate if rate > 0 else 0
            typer.echo(f"backtest: {done}/{total} candles ({pct}%), {rate:,.0f}/s, ETA {eta:,.0f}s", err=True)
            self._next_pct = pct + 10


def backtest(
    strategy: Annotated[
        list[str], typer.Option("--strategy", help="strategy name (repeatable; default: all enabled in settings)")
    ] = [],  # noqa: B006 - Typer reads the default, never mutates it
    param: Annotated[list[str], typer.Option("--param", help="strategy parameter NAME.KEY=VALUE (repeatable)")] = [],  # noqa: B006
    symbols: Annotated[str | None, typer.Option(help="comma-separated (default: SYMBOLS setting)")] = None,
    interval: Annotated[str | None, typer.Option(help="candle interval (default: INTERVAL setting)")] = None,
    start: Annotated[str | None, typer.Option(help="ISO date/time (UTC) or epoch ms, inclusive")] = None,
    end: Annotated[str | None, typer.Option(help="ISO date/time (UTC) or epoch ms, exclusive (default: now)")] = None,
    days: Annotated[float | None, typer.Option(help="period length in days (ending at --end or now)")] = None,
    data: Annotated[
        str,
        typer.Option(help="store (DATABASE_URL), bundled, a Parquet folder from download-data, or Binance kline files"),
    ] = "store",
    balance: Annotated[str, typer.Option(help="starting balance in the quote asset")] = "10000",
    engine: Annotated[str, typer.Option(help="fast | replay (replay = the platform's own services)")] = "fast",
    set_: Annotated[
        list[str],
        typer.Option("--set", help="ANY platform setting KEY=VALUE; coordinator.*, risk.RULE.FIELD, sim.*, jobs.*"),
    ] = [],  # noqa: B006
    stake: Annotated[str | None, typer.Option(help="fixed quote amount per trade instead of risk sizing")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="write the result as JSON here")] = None,
    report_path: Annotated[
        Path | None, typer.Option("--report", help="write a self-contained HTML report here")
    ] = None,
    allow_gaps: Annotated[
        bool, typer.Option("--allow-gaps", help="run even if the data-quality gate finds issues")
    ] = False,
    store: Annotated[
        bool, typer.Option("--store/--no-store", help="save the run in DATABASE_URL's backtest tables")
    ] = True,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="show progress")] = True,
    universe: Annotated[
        Path | None,
        typer.Option(help="pair-universe YAML: entries only on its members at each refresh (docs/universe.md)"),
    ] = None,
) -> None:
    """Backtest strategies on history with the platform's own services (see docs/backtesting.md)."""
    from roottrading.backtest.data import MissingData
    from roottrading.backtest.overrides import OverrideError
    from roottrading.backtest.runner import DataQualityError, prepare, run_backtest
    from roottrading.config import ConfigError, load_settings
    from roottrading.runtime.logsetup import configure_logging

    try:
        settings = load_settings()
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    # the services' per-signal warnings (rejections, ...) are the run's normal life: stored, not printed
    configure_logging("DEBUG" if settings.log_level == "DEBUG" else "ERROR", settings.effective_log_format)
    if engine not in ("fast", "replay"):
        raise _fail(f"--engine {engine!r}: use fast or replay")
    bal, stk, overrides = parse_money_and_overrides(balance, stake, set_)
    if universe is not None:  # the same setting as --set universe_config=PATH, checked before any data is read
        from roottrading.universe import UniverseConfigError, load_universe

        try:
            load_universe(universe)
        except UniverseConfigError as exc:
            raise _fail(f"--universe: {exc}") from None
        overrides["universe_config"] = str(universe)
    from roottrading.domain.market import INTERVAL_MS

    iv = interval or settings.interval
    if iv not in INTERVAL_MS:
        raise _fail(f"--interval {iv!r}: use one of {', '.join(INTERVAL_MS)}")
    syms = tuple(s.strip().upper() for s in (symbols.split(",") if symbols else settings.symbols) if s.strip())
    start_ms, end_ms, explicit = _period(start, end, days)
    config = BacktestConfig(
        strategies=_resolve_strategies(strategy, settings),
        symbols=syms,
        interval=iv,
        start_ms=start_ms,
        end_ms=end_ms,
        data=data,
        balance=bal,
        engine=engine,  # type: ignore[arg-type]
        params=_parse_params(param),
        settings=overrides,
        stake=stk,
        allow_gaps=allow_gaps,
    )
    unknown = [n for n in config.params if n not in config.strategies]
    if unknown:
        raise _fail(
            f"--param {unknown[0]}.*: {unknown[0]} is not one of the strategies run ({', '.join(config.strategies)})"
        )

    async def go() -> tuple[BacktestResult, str | None, dict[str, list[Any]]]:
        prepared = await prepare(config, database_url=settings.database_url, explicit_range=explicit)
        if not prepared.quality.ok:
            typer.echo(f"warning: data quality: {prepared.quality.summary()} (running anyway: --allow-gaps)", err=True)
        loop = asyncio.get_running_loop()
        with _Progress(progress) as bar:
            with contextlib.suppress(NotImplementedError, RuntimeError):  # Ctrl-C: stop at the next candle
                loop.add_signal_handler(signal.SIGINT, lambda: setattr(bar, "stop_requested", True))
            try:
                result, run_id = await run_backtest(
                    config,
                    database_url=settings.database_url,
                    store=store,
                    progress=bar,
                    notice=lambda text: typer.echo(f"note: {text}", err=True),
                    explicit_range=explicit,
                    prepared=prepared,
                )
                return result, run_id, prepared.candles
            finally:
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(signal.SIGINT)

    try:
        result, run_id, candles = asyncio.run(go())
    except (MissingData, DataQualityError, OverrideError, ValueError) as exc:
        raise _fail(str(exc)) from None
    _write_outputs(result, run_id, json_path, report_path, candles)
    if result.interrupted:
        raise typer.Exit(130)


def _write_outputs(
    result: BacktestResult,
    run_id: str | None,
    json_path: Path | None,
    report_path: Path | None,
    candles: dict[str, list[Any]],
) -> None:
    from roottrading.backtest.report import print_summary, write_html

    if json_path is not None:
        doc = result.as_json()
        doc["run_id"] = run_id
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    if report_path is not None:
        write_html(result, report_path, candles)
    print_summary(result, run_id=run_id)
    for path, what in ((json_path, "JSON"), (report_path, "report")):
        if path is not None:
            typer.echo(f"{what}: {path}")


def parse_money_and_overrides(
    balance: str, stake: str | None, set_: list[str]
) -> tuple[Decimal, Decimal | None, dict[str, str]]:
    """`--balance`, `--stake` and `--set`, checked the same way for `backtest` and `optimize`: a clear error
    (exit 2) for a non-number, a value <= 0 or a malformed assignment."""
    from roottrading.backtest.overrides import OverrideError, split_assignment

    try:
        bal = Decimal(balance)
        stk = Decimal(stake) if stake is not None else None
    except InvalidOperation:
        raise _fail(f"--balance/--stake: not a number ({balance!r}, {stake!r})") from None
    if not bal.is_finite() or bal <= 0 or (stk is not None and (not stk.is_finite() or stk <= 0)):
        raise _fail("--balance and --stake must be finite numbers > 0")
    try:
        overrides = dict(split_assignment(s) for s in set_)
    except OverrideError as exc:
        raise _fail(str(exc)) from None
    return bal, stk, overrides
