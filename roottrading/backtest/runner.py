"""One backtest, start to end: load the history, pass the data-quality gate, pick the engine, run, store.

Shared by `roottrading backtest` and the API, so both refuse the same data and store the same rows.

Engines: `replay` (backtest/replay.py) always exists. `fast` is looked up as `roottrading.backtest.fast.run_fast`
with the same signature as `run_replay`; until it exists, or when it raises `EngineUnavailable` (a setting it
cannot model), the run goes to `replay` and the result says why in `fallback`.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from roottrading.backtest.data import QualityReport, check_quality, clean, download_command, load_history
from roottrading.backtest.model import BacktestConfig, BacktestResult, EngineUnavailable
from roottrading.backtest.overrides import PlatformOverrides, parse_overrides
from roottrading.backtest.replay import Progress, run_replay
from roottrading.domain import Candle


class DataQualityError(ValueError):
    """The history has gaps, duplicates, non-monotonic or inconsistent candles and `allow_gaps` is off."""

    def __init__(self, report: QualityReport, fetch: str | None = None) -> None:
        self.report = report
        lines = "\n  ".join(report.issues)
        hint = f"Fetch the missing candles with:\n  {fetch}\n" if fetch else ""
        super().__init__(
            f"data-quality gate: {report.summary()}\n  {lines}\n{hint}"
            "Refusing to backtest on it (fix the data, or pass --allow-gaps to run anyway)."
        )


@dataclass
class Prepared:
    """History that passed the gate (or was allowed through), ready for an engine."""

    config: BacktestConfig  # with the period the data covers when the user gave none
    candles: dict[str, list[Candle]]
    quality: QualityReport
    overrides: PlatformOverrides
    warnings: list[str] = field(default_factory=list)


async def prepare(config: BacktestConfig, *, database_url: str | None, explicit_range: bool = True) -> Prepared:
    """Validate `--set`, load the history and run the data-quality gate. Raises OverrideError, MissingData,
    DataQualityError or ValueError with a message for the user. `explicit_range`: the user gave the period
    (missing candles at its edges are gaps); otherwise it is whatever the source holds."""
    overrides = parse_overrides(config.settings)
    raw = await load_history(
        config.data, config.symbols, config.interval, config.start_ms, config.end_ms, database_url=database_url
    )
    quality = check_quality(
        raw, config.interval, config.start_ms if explicit_range else None, config.end_ms if explicit_range else None
    )
    if not quality.ok and not config.allow_gaps:
        gappy = [s for s, per in quality.counts.items() if per.get("gap")]
        fetch = (
            download_command(gappy, config.interval, config.start_ms, config.end_ms, config.data)
            if gappy and explicit_range and config.data != "bundled"
            else None
        )
        raise DataQualityError(quality, fetch)
    warnings = [] if quality.ok else [f"data quality (allowed with --allow-gaps): {quality.summary()}"]
    candles = clean(raw)
    if not explicit_range:  # "everything the source holds": the period is the data's
        config = replace(
            config,
            start_ms=min(cs[0].open_time for cs in candles.values()),
            end_ms=max(cs[-1].close_time for cs in candles.values()) + 1,
        )
    return Prepared(config, candles, quality, overrides, warnings)


def _fast_engine() -> Callable[..., Any] | None:
    try:
        module = importlib.import_module("roottrading.backtest.fast")
    except ModuleNotFoundError as exc:
        if exc.name in ("roottrading.backtest.fast",):
            return None
        raise
    return getattr(module, "run_fast", None)


async def run_engine(
    config: BacktestConfig,
    candles: Mapping[str, Sequence[Candle]],
    *,
    overrides: PlatformOverrides | None = None,
    progress: Progress | None = None,
    notice: Callable[[str], None] | None = None,
) -> BacktestResult:
    """Run `config.engine`, falling back to `replay` (with `fallback` set) when `fast` cannot run it."""
    if config.engine == "fast":
        fast = _fast_engine()
        reason = "the fast engine is not available yet"
        if fast is not None:
            try:
                result: BacktestResult = await fast(config, candles, progress=progress, overrides=overrides)
                return result
            except EngineUnavailable as exc:
                reason = f"the fast engine cannot model this run: {exc}"
        if notice is not None:
            notice(f"{reason}; running the replay engine (the platform's own services) instead")
        result = await run_replay(replace(config, engine="replay"), candles, progress=progress, overrides=overrides)
        result.config = config
        result.fallback = reason
        return result
    return await run_replay(config, candles, progress=progress, overrides=overrides)


async def run_backtest(
    config: BacktestConfig,
    *,
    database_url: str | None,
    store: bool = True,
    run_id: str | None = None,
    progress: Progress | None = None,
    notice: Callable[[str], None] | None = None,
    explicit_range: bool = True,
    prepared: Prepared | None = None,
) -> tuple[BacktestResult, str | None]:
    """prepare + run_engine + store (in DATABASE_URL's backtest tables). Returns (result, run id or None)."""
    prep = prepared or await prepare(config, database_url=database_url, explicit_range=explicit_range)
    config = prep.config
    bias = user_strategy_bias(config, prep)
    for line in bias:
        if notice is not None:
            notice(line)
    result = await run_engine(config, prep.candles, overrides=prep.overrides, progress=progress, notice=notice)
    result.warnings = [*prep.warnings, *bias, *result.warnings]
    if store and database_url:
        run_id = await save_result(database_url, result, run_id)
    return result, run_id


def user_strategy_bias(config: BacktestConfig, prep: Prepared) -> list[str]:
    """The bias check (backtest/bias.py) on the run's USER strategies, on the run's own data: a backtest of a
    strategy that peeks at the future is worthless, so say so before its numbers. Built-ins are held to it by
    the test suite instead of on every run."""
    from roottrading.backtest.bias import backtest_warnings
    from roottrading.strategies.loader import load_strategies

    settings = prep.overrides.settings_for(config, database_url="sqlite://", data_dir="/nonexistent")
    if not settings.strategies_dir:
        return []
    user = load_strategies(settings.strategies_dir, builtins=False, use_entry_points=False, check_bias=False)
    return backtest_warnings(user.strategies, config.strategies, config.params, prep.candles)


async def save_result(database_url: str, result: BacktestResult, run_id: str | None = None) -> str:
    from roottrading.backtest.store import BacktestRepo, new_run_id
    from roottrading.store import Database

    db = Database(database_url)
    try:
        await db.migrate()
        rid = run_id or new_run_id()
        await BacktestRepo(db).save(rid, result, time.time_ns() // 1_000_000)
        return rid
    finally:
        await db.close()
