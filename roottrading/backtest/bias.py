"""Bias checks: does a strategy look into the future, and does its signal depend on how much history it got?

Why: a backtest is only worth something when the strategy could have produced the same signal live. Two
classic ways it cannot:

- lookahead: the vectorised `generate` sees the whole array, so `close.shift(-1)` or a series-wide max
  quietly reads candles that were not closed yet. Test: run the full history once, then cut the data at
  many rows and evaluate the cut (same history before the row, no future after it); a last-row signal that
  differs from the full run's signal at that row needed the future.
- history length: recursive indicators (EMA, RSI, ADX, ATR) depend on where their input starts. The live
  analyzer evaluates each candle on `evaluation_window(strategy)` candles; when a longer history (2x, 4x)
  gives another signal at the same row, the indicator has not converged within the live window, and any
  offline run with more history would disagree with live trading.

`check_strategy` returns a `BiasReport` (a verdict plus the offending rows); `roottrading check-strategy`
prints it, the loader runs a light check on user strategies, the backtest runner puts findings in the
result's warnings.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from roottrading.domain import Candle
from roottrading.strategies.base import Bars, BaseStrategy, evaluation_window

#: time the automatic checks may take per strategy (a slow user strategy must not stall loading or a run)
LOAD_BUDGET_S = 2.0
RUN_BUDGET_S = 5.0
#: lengths tried by the history check, in multiples of the evaluation window (the first is the live one)
HISTORY_MULTIPLES = (1, 2, 4)


@dataclass(frozen=True)
class Finding:
    """One row where two evaluations disagree: `expected` is the reference (full run / longest history)."""

    kind: str  # "lookahead" or "history"
    row: int
    open_time: int
    expected: str  # e.g. "BUY/MODERATE" or "none"
    got: str
    detail: str  # what was compared, e.g. "cut after row 341" or "window 150 vs 600"

    def describe(self) -> str:
        return f"{self.kind}: row {self.row} (open_time {self.open_time}) {self.detail}: {self.expected} vs {self.got}"


@dataclass
class BiasReport:
    strategy: str
    rows: int
    window: int
    cuts_checked: int = 0
    history_rows_checked: int = 0
    history_lengths: tuple[int, ...] = ()
    lookahead: list[Finding] = field(default_factory=list)
    history: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. "too little data for the 4x history check"

    @property
    def ok(self) -> bool:
        return not self.lookahead and not self.history

    def verdict(self) -> str:
        parts = []
        if self.lookahead:
            parts.append(f"LOOKAHEAD: {len(self.lookahead)} of {self.cuts_checked} cut points changed their signal")
        if self.history:
            parts.append(
                f"HISTORY-DEPENDENT: {len(self.history)} of {self.history_rows_checked} rows differ between "
                f"history lengths {list(self.history_lengths)}"
            )
        if not parts:
            return (
                f"OK: no lookahead at {self.cuts_checked} cut points; same signal with history lengths "
                f"{list(self.history_lengths)} at {self.history_rows_checked} rows"
            )
        return "; ".join(parts)

    def warnings(self, limit: int = 3) -> list[str]:
        """One line per problem kind, with the first offending rows: what the loader and a backtest report."""
        out = []
        for kind, found in (("lookahead", self.lookahead), ("history", self.history)):
            if found:
                rows = "; ".join(f.describe() for f in found[:limit])
                more = f" (+{len(found) - limit} more)" if len(found) > limit else ""
                out.append(f"bias check {self.strategy}: {kind} at {len(found)} row(s): {rows}{more}")
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "ok": self.ok,
            "verdict": self.verdict(),
            "rows": self.rows,
            "evaluation_window": self.window,
            "cuts_checked": self.cuts_checked,
            "history_rows_checked": self.history_rows_checked,
            "history_lengths": list(self.history_lengths),
            "lookahead": [f.__dict__ for f in self.lookahead],
            "history": [f.__dict__ for f in self.history],
            "notes": self.notes,
        }


def bars_from_candles(candles: Sequence[Candle]) -> Bars:
    return Bars(
        open_time=np.fromiter((c.open_time for c in candles), np.int64, len(candles)),
        open=np.fromiter((c.open for c in candles), np.float64, len(candles)),
        high=np.fromiter((c.high for c in candles), np.float64, len(candles)),
        low=np.fromiter((c.low for c in candles), np.float64, len(candles)),
        close=np.fromiter((c.close for c in candles), np.float64, len(candles)),
        volume=np.fromiter((c.volume for c in candles), np.float64, len(candles)),
    )


def _label(row: dict[str, Any] | None) -> str:
    if row is None:
        return "none"
    return f"{row['side'].value}/{row['strength'].name}"


def _sample(candidates: np.ndarray, lo: int, hi: int, count: int) -> list[int]:
    """Up to `count` rows in [lo, hi): half where the reference signals (a signal that vanishes is the usual
    symptom), half evenly spaced (a signal that appears). Deterministic: no randomness in a check."""
    if hi <= lo or count <= 0:
        return []
    sig = [int(i) for i in candidates if lo <= i < hi]
    picked = set(sig[:: max(1, len(sig) // max(1, count // 2))][: count // 2]) if sig else set()
    spaced = np.linspace(lo, hi - 1, num=min(hi - lo, count - len(picked))).astype(int)
    picked.update(int(i) for i in spaced)
    return sorted(picked)


def _late(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() > deadline


@dataclass(frozen=True)
class _Inform:
    """Informative sources of a check (symbol -> base-interval Bars) and the base interval."""

    sources: dict[str, Bars]
    base_ms: int

    def on(self, strategy: BaseStrategy, win: Bars, keep: int | None = None) -> Bars:
        """`win` with the strategy's informative pairs cut at its last row (unchanged when it declares none)."""
        if not strategy.informative:
            return win
        from roottrading.strategies.informative import attach

        return attach(strategy, win, self.sources, self.base_ms, keep)


_NO_INFORM = _Inform({}, 0)


def check_lookahead(
    strategy: BaseStrategy, bars: Bars, cuts: int = 40, deadline: float | None = None, inform: _Inform = _NO_INFORM
) -> tuple[list[Finding], int]:
    """Compare the full vectorised run's signal at row i with the last row of the data cut after row i.

    The cut keeps the whole history before i (from row 0, as the full run has it), so the only thing that
    differs is the future: any difference is lookahead, never history length. Informative pairs are cut at
    the same time (all their closed history kept): a strategy reading an informative candle that had not
    closed at a row disagrees with its cut there."""
    n = len(bars)
    everything = max([len(b) for b in inform.sources.values()] + [n])
    full = strategy.signals_bars(inform.on(strategy, bars, everything))
    rows = _sample(np.flatnonzero(full.side), strategy.warmup + 1, n, cuts)
    found = []
    done = 0
    for i in rows:
        if _late(deadline):
            break
        done += 1
        cut = strategy.signals_bars(inform.on(strategy, bars.window(i + 1, i + 1), everything)).row(i)
        ref = full.row(i)
        if _label(cut) != _label(ref):
            found.append(
                Finding("lookahead", i, int(bars.open_time[i]), _label(ref), _label(cut), f"cut after row {i}")
            )
    return found, done


def check_history(
    strategy: BaseStrategy,
    bars: Bars,
    rows: int = 40,
    multiples: Sequence[int] = HISTORY_MULTIPLES,
    deadline: float | None = None,
    inform: _Inform = _NO_INFORM,
) -> tuple[list[Finding], int, tuple[int, ...], list[str]]:
    """Evaluate rows on the live window and on longer ones (2x, 4x); report rows whose signal differs from
    the longest history's. Only rows that have the longest history in full are compared."""
    n = len(bars)
    w = evaluation_window(strategy)
    lengths = tuple(w * k for k in multiples)
    notes = []
    while len(lengths) > 1 and lengths[-1] > n - 1:
        notes.append(f"history {lengths[-1]} not checked: only {n} candles")
        lengths = lengths[:-1]
    if len(lengths) < 2:
        return [], 0, lengths, notes
    longest = lengths[-1]
    everything = max([len(b) for b in inform.sources.values()] + [n])
    ref_side = strategy.signals_bars(inform.on(strategy, bars, everything)).side  # candidates: where a long run signals
    picked = _sample(np.flatnonzero(ref_side), longest - 1, n, rows)
    found = []
    done = 0
    for i in picked:
        if _late(deadline):
            break
        done += 1
        # informative history grows with the base history (k x the strategy's informative_window)
        results = [
            strategy._evaluate_last(inform.on(strategy, bars.window(i + 1, size), strategy.informative_window * k))
            for size, k in zip(lengths, multiples, strict=False)
        ]
        ref = _label(results[-1])
        for size, res in zip(lengths[:-1], results[:-1], strict=True):
            if _label(res) != ref:
                found.append(
                    Finding("history", i, int(bars.open_time[i]), ref, _label(res), f"window {size} vs {longest}")
                )
                break  # one finding per row: the shortest (live) window that disagrees
    return found, done, lengths, notes


def check_strategy(
    strategy: BaseStrategy,
    candles: Sequence[Candle] | Bars,
    *,
    cuts: int = 40,
    rows: int = 40,
    budget_s: float | None = None,
    informative: dict[str, Sequence[Candle] | Bars] | None = None,
) -> BiasReport:
    """Both checks on `candles` (closed, oldest first, one symbol). Exceptions from the strategy propagate:
    a strategy that raises on real data is broken, which is a louder problem than bias. `budget_s`: stop
    sampling after that long (the loader must not stall on a slow strategy); the counts say what was done.
    informative: symbol -> its candles at the same interval, for a strategy declaring informative pairs
    (a pair not given shows no candle, and a note says it was not checked)."""
    deadline = None if budget_s is None else time.monotonic() + budget_s
    bars = candles if isinstance(candles, Bars) else bars_from_candles(candles)
    report = BiasReport(strategy.name, len(bars), evaluation_window(strategy))
    if len(bars) <= strategy.warmup + 1:
        report.notes.append(f"only {len(bars)} candles for a warm-up of {strategy.warmup}: nothing checked")
        return report
    inform = _NO_INFORM
    if strategy.informative:
        from roottrading.strategies.timeframes import base_interval_ms

        srcs = {s.upper(): (c if isinstance(c, Bars) else bars_from_candles(c)) for s, c in (informative or {}).items()}
        inform = _Inform(srcs, base_interval_ms(bars))
        missing = sorted({s for s, _ in strategy.informative} - set(srcs))
        if missing:
            report.notes.append(f"informative {', '.join(missing)}: no candles given, checked as never visible")
    report.lookahead, report.cuts_checked = check_lookahead(strategy, bars, cuts, deadline, inform)
    report.history, report.history_rows_checked, report.history_lengths, notes = check_history(
        strategy, bars, rows, deadline=deadline, inform=inform
    )
    report.notes.extend(notes)
    if _late(deadline):
        report.notes.append(f"stopped after the {budget_s:g} s budget: partial check")
    return report


def reference_candles() -> list[Candle]:
    """The data the load-time check uses: bundled real daily BTC/USDT (1,246 candles), no network needed."""
    from roottrading.datasets import load_candles

    return load_candles("BTCUSDT", "1d")


def load_time_check(cls: type[BaseStrategy]) -> list[str]:
    """The light check the loader runs on a user strategy (default parameters, bundled data): warnings only.
    Exceptions from the strategy propagate (the loader turns them into a load error)."""
    return check_strategy(cls(), reference_candles(), cuts=20, rows=20, budget_s=LOAD_BUDGET_S).warnings()


def backtest_warnings(
    strategies: dict[str, type[BaseStrategy]],
    names: Sequence[str],
    params: dict[str, dict[str, Any]],
    candles: dict[str, list[Candle]],
    max_rows: int = 3000,
) -> list[str]:
    """Bias warnings for a backtest's strategies on its own data (first symbol, last `max_rows` candles): what
    the runner adds to `BacktestResult.warnings`. A strategy that raises here is reported, not fatal (the
    engine will report it properly)."""
    series = next((cs for cs in candles.values() if cs), None)
    if series is None:
        return []
    tail = series[-max_rows:]
    out = []
    for name in names:
        cls = strategies.get(name)
        if cls is None:
            continue
        try:
            report = check_strategy(cls(**params.get(name, {})), tail, cuts=20, rows=20, budget_s=RUN_BUDGET_S)
            out.extend(report.warnings())
        except Exception as exc:  # noqa: BLE001 - user code under test: report, let the engine fail properly
            out.append(f"bias check {name}: could not run ({type(exc).__name__}: {exc})")
    return out


def check_strategy_cli(
    name: str,
    *,
    symbol: str = "BTCUSDT",
    interval: str = "1d",
    data: str = "bundled",
    params: dict[str, Any] | None = None,
    cuts: int = 60,
    rows: int = 60,
) -> BiasReport:
    """`roottrading check-strategy NAME`: the strategy (built-in or from STRATEGIES_DIR) on bundled data or a
    history source of `roottrading backtest --data`."""
    from roottrading.config import load_settings
    from roottrading.strategies.loader import load_strategies

    settings = load_settings()
    loaded = load_strategies(settings.strategies_dir, check_bias=False)
    if name not in loaded.strategies:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(sorted(loaded.strategies))}")
    strategy = loaded.strategies[name](**(params or {}))
    candles = _cli_candles(symbol, interval, data, settings.database_url)
    # the informative pairs' symbols from the same source (a symbol it does not have is reported in notes)
    informative: dict[str, Sequence[Candle] | Bars] = {}
    for sym in sorted({s.upper() for s, _ in strategy.informative}):
        try:
            informative[sym] = (
                candles if sym == symbol.upper() else _cli_candles(sym, interval, data, settings.database_url)
            )
        except (ValueError, KeyError, OSError):
            continue
    return check_strategy(strategy, candles, cuts=cuts, rows=rows, informative=informative)


def _cli_candles(symbol: str, interval: str, data: str, database_url: str) -> list[Candle]:
    if data == "bundled":
        from roottrading.datasets import load_candles

        return load_candles(symbol, interval)
    import asyncio

    from roottrading.backtest.data import clean, load_history

    raw = asyncio.run(load_history(data, (symbol,), interval, 0, 2**62, database_url=database_url))
    candles = clean(raw).get(symbol, [])
    if not candles:
        raise ValueError(f"no {symbol} {interval} candles in {data}")
    return candles


def cli_main(name: str, symbol: str, interval: str, data: str, params: list[str], as_json: bool) -> int:
    """Run and print; the exit status: 0 clean, 1 bias found, 2 bad input."""
    import json

    import typer
    import yaml

    parsed: dict[str, Any] = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep:
            typer.echo(f"error: --param {item!r}: expected KEY=VALUE", err=True)
            return 2
        parsed[key.strip()] = yaml.safe_load(value)
    try:
        report = check_strategy_cli(name, symbol=symbol, interval=interval, data=data, params=parsed)
    except ValueError as exc:  # unknown strategy, bad parameter, no data
        typer.echo(f"error: {exc}", err=True)
        return 2
    if as_json:
        typer.echo(json.dumps(report.as_json(), indent=2))
        return 0 if report.ok else 1
    typer.echo(f"{report.strategy} on {symbol} {interval} ({report.rows} candles, live window {report.window})")
    typer.echo(report.verdict())
    for f in [*report.lookahead, *report.history]:
        typer.echo(f"  {f.describe()}")
    for note in report.notes:
        typer.echo(f"  note: {note}")
    return 0 if report.ok else 1
