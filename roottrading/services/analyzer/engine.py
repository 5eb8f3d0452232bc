"""The analyzer's core, free of I/O: candles in, signals out, for a set of symbols.

The same object runs inside the analyzer service (in-process or in a worker process) and inside the
backtester, so live and backtest cannot disagree about what a strategy said.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import structlog

from roottrading.domain import Candle, Signal, SignalStrength, interval_ms
from roottrading.services.analyzer.window import CandleWindow
from roottrading.strategies.base import MIN_EVALUATION_WINDOW, Bars, evaluation_window
from roottrading.strategies.informative import attach, normalise, source_window
from roottrading.strategies.loader import StrategyRegistry, load_strategies
from roottrading.strategies.state import StrategyState

log = structlog.get_logger(__name__)


@dataclass
class EngineConfig:
    interval: str = "1m"
    strategies_dir: str | None = None
    enabled: list[str] | None = None  # None = all loaded strategies
    window: int = 0  # 0 = derived from the strategies' warm-up
    consensus_k: int = 0  # > 1: publish only when K strategies agree on a side
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # strategy -> params (all symbols)
    # time limit per strategy evaluation: measured (an evaluation cannot be interrupted in-process); a strategy
    # over it on `eval_overruns` consecutive candles of a symbol is disabled for that symbol. 0 = no limit.
    # A strategy that never returns is the worker pool's business (worker timeout -> restart).
    eval_limit_ms: float = 0.0
    eval_overruns: int = 3


@dataclass
class EngineResult:
    signals: list[Signal]  # what should be published
    evaluated: list[Signal]  # every individual strategy signal (stored for transparency)
    errors: list[tuple[str, str]]  # (strategy, message) per failed strategy evaluation
    #: (strategy, symbol, document) of every strategy state this candle changed: the service stores them
    states: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


_EMPTY = EngineResult([], [], [], [])
DISABLED_PREFIX = "disabled for "  # an error starting so: the engine disabled the strategy for that symbol


def describe_exception(exc: BaseException) -> str:
    """Type, message and the innermost frame (a user strategy's typo is found by its file and line)."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" at {tb[-1].filename}:{tb[-1].lineno}" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"


class AnalyzerEngine:
    def __init__(self, config: EngineConfig, registry: StrategyRegistry | None = None) -> None:
        self.config = config
        if registry is None:
            loaded = load_strategies(config.strategies_dir)
            self.load_errors = [f"{e.source}: {e.error}" for e in loaded.errors]
            registry = StrategyRegistry.from_load_result(loaded, config.enabled)
        else:
            self.load_errors = []
        self.registry = registry
        for name, params in config.params.items():
            self.registry.set_params(name, params)
        self.windows: dict[str, CandleWindow] = {}
        self.failures: dict[str, int] = {}
        #: strategy -> {"symbol", "open_time", "error", "count"}: its latest failure (reported by the service)
        self.last_errors: dict[str, dict[str, Any]] = {}
        self._overruns: dict[tuple[str, str], int] = {}
        # per symbol: (open_time, result) of the last evaluated candle, answered again on its redelivery
        self._last: dict[str, tuple[int, EngineResult]] = {}
        # per symbol: [(strategy, its params dict, lookback)], so a candle does not go through the registry's
        # lock 27 times; dropped by control() (every runtime change goes through it) or invalidate()
        self._plans: dict[str, list[tuple[Any, Any, int]]] = {}
        #: symbol -> its base-interval candles for the strategies' informative pairs (fed by `inform`)
        self.informed: dict[str, CandleWindow] = {}
        self._inform_syms: set[str] | None = None
        #: (strategy, symbol) -> its persistent state (strategies/state.py), restored by `restore_states`
        self.states: dict[tuple[str, str], StrategyState] = {}

    def restore_states(self, docs: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Stored state documents (at start, or a restarted worker): each strategy continues from its own."""
        for name, symbol, doc in docs:
            st = self.states[(name, symbol)] = StrategyState(doc)
            st.saved()

    def _state(self, name: str, symbol: str) -> StrategyState:
        st = self.states.get((name, symbol))
        if st is None:
            st = self.states[(name, symbol)] = StrategyState()
        return st

    # --- informative data ---
    def inform_symbols(self) -> set[str]:
        """Symbols some loaded strategy declares as informative: their candles must reach `inform`. (The
        declarations are class attributes, fixed once loaded: computed once.)"""
        if self._inform_syms is None:
            self._inform_syms = {sym for st in self._declaring() for sym, _ in normalise(st.informative)}
        return self._inform_syms

    def _declaring(self) -> list[Any]:
        return [st for st in map(self.registry.get, self.registry.names()) if getattr(st, "informative", ())]

    def inform_size(self) -> int:
        """Base candles kept per informative symbol: enough for every declared pair's informative_window
        (+ a few: the informative symbol may run ahead of the evaluated one)."""
        base = interval_ms(self.config.interval)
        sizes = [
            source_window(int(st.informative_window), tf, base)
            for st in self._declaring()
            for _, tf in normalise(st.informative)
            if interval_ms(tf) >= base
        ]
        return max(sizes, default=0) + 16

    def inform(self, candles: list[Candle]) -> int:
        """Keep closed candles of informative symbols (any order of arrival per symbol; redeliveries
        ignored). Returns how many were new."""
        wanted = self.inform_symbols()
        n = 0
        for c in candles:
            if not c.closed or c.symbol not in wanted:
                continue
            w = self.informed.get(c.symbol)
            if w is None:
                w = self.informed[c.symbol] = CandleWindow(self.inform_size())
            n += w.append(c)
        return n

    def invalidate(self) -> None:
        """Forget the cached active-strategy lists: call after changing `registry` other than via control()."""
        self._plans.clear()

    def _plan(self, symbol: str) -> list[tuple[Any, Any, int]]:
        plan = self._plans.get(symbol)
        if plan is not None and all(getattr(st, "_param_values", None) is pv for st, pv, _ in plan):
            return plan
        plan = self._plans[symbol] = [
            (st, getattr(st, "_param_values", None), self.lookback(st)) for st in self.registry.active(symbol)
        ]
        return plan

    def window_size(self) -> int:
        return self.config.window or max(
            self.min_lookback,
            max((self.lookback(self.registry.get(n)) for n in self.registry.names()), default=self.min_lookback),
        )

    min_lookback = MIN_EVALUATION_WINDOW

    def lookback(self, strat: Any) -> int:
        """Candles a strategy is evaluated on: `evaluation_window` (strategies/base.py), the rule offline
        `signals()` and the warm-up use too, capped by the configured window."""
        return evaluation_window(strat, self.config.window)

    def window(self, symbol: str) -> CandleWindow:
        w = self.windows.get(symbol)
        if w is None:
            w = self.windows[symbol] = CandleWindow(self.window_size())
        return w

    def warm(self, candles: list[Candle]) -> int:
        """Load history without evaluating (start-up warm-up). Returns candles accepted."""
        return sum(1 for c in candles if c.closed and self.window(c.symbol).append(c))

    def on_candle(self, c: Candle) -> EngineResult:
        """Evaluate every active strategy on the symbol's window with `c` appended. The candle counts as
        processed only once evaluated: if evaluation raises, the append is undone (a redelivery evaluates it
        again), and a redelivery of the last evaluated candle gets the same signals (same ids) again."""
        w = self.windows.get(c.symbol) or self.window(c.symbol)
        if not c.closed:
            return _EMPTY
        if not w.append(c):
            last = self._last.get(c.symbol)
            if last is not None and last[0] == c.open_time:
                # its state changes again too: storing them is idempotent, and their first store may have failed
                return EngineResult(last[1].signals, last[1].evaluated, [], last[1].states)
            return _EMPTY
        try:
            result = self._evaluate(c, w)
        except BaseException:
            w.undo_append()
            raise
        self._last[c.symbol] = (c.open_time, result)
        return result

    def _evaluate(self, c: Candle, w: CandleWindow) -> EngineResult:
        bars = w.bars()
        tails: dict[int, Bars] = {}  # strategies with the same lookback share one Bars (and its indicator cache)
        out: list[Signal] = []
        errors: list[tuple[str, str]] = []
        changed: list[tuple[str, str, dict[str, Any]]] = []
        symbol, interval = c.symbol, c.interval
        limit_s = self.config.eval_limit_ms / 1000
        sources: dict[str, Bars] | None = None
        for strat, _, size in self._plan(symbol):
            view = tails.get(size)
            if view is None:
                view = tails[size] = bars.tail(size)
            t0 = time.perf_counter()
            state = self._state(strat.name, symbol)
            if hasattr(strat, "bind_state"):
                strat.bind_state(symbol, state)
            try:
                # its informative pairs, cut at this candle's close (strategies/informative.py)
                if getattr(strat, "informative", ()):
                    if sources is None:
                        sources = {s: w.bars() for s, w in self.informed.items()}
                    view = attach(strat, view, sources, interval_ms(interval))
                sig = strat.latest_signal_bars(view, symbol, interval)
                if state.changed:
                    changed.append((strat.name, symbol, state.snapshot()))
                    state.saved()
            except Exception as exc:  # noqa: BLE001 - user code can raise anything; one broken strategy is
                # reported and skipped (its state changes rolled back), the others on this symbol keep running
                state.rollback()
                self._report(strat.name, c, describe_exception(exc), errors)
                continue
            if limit_s and time.perf_counter() - t0 > limit_s:
                self._overrun(strat.name, c, (time.perf_counter() - t0) * 1000, errors)
            elif limit_s:
                self._overruns.pop((strat.name, symbol), None)
            if sig is not None:
                out.append(sig)
        return EngineResult(self._consensus(out, c), out, errors, changed)

    def _report(self, name: str, c: Candle, error: str, errors: list[tuple[str, str]]) -> None:
        self.failures[name] = self.failures.get(name, 0) + 1
        self.last_errors[name] = {
            "symbol": c.symbol,
            "open_time": c.open_time,
            "error": error,
            "count": self.failures[name],
        }
        errors.append((name, error))

    def _overrun(self, name: str, c: Candle, took_ms: float, errors: list[tuple[str, str]]) -> None:
        """Over the time limit: reported; disabled for the symbol after `eval_overruns` in a row."""
        key = (name, c.symbol)
        n = self._overruns[key] = self._overruns.get(key, 0) + 1
        limit = self.config.eval_limit_ms
        if n >= self.config.eval_overruns:
            self._overruns.pop(key, None)
            self.control("disable", name, c.symbol)
            msg = (
                f"{DISABLED_PREFIX}{c.symbol}: {n} evaluations in a row over the {limit:g} ms limit ({took_ms:.0f} ms)"
            )
        else:
            msg = f"evaluation took {took_ms:.0f} ms, over the {limit:g} ms limit ({n}/{self.config.eval_overruns})"
        self._report(name, c, msg, errors)

    def _consensus(self, sigs: list[Signal], c: Candle) -> list[Signal]:
        k = self.config.consensus_k
        if k <= 1:
            return sigs
        published = []
        for side in {s.side for s in sigs}:
            agree = [s for s in sigs if s.side is side]
            if len(agree) >= k:
                rank = round(sum(s.strength.rank for s in agree) / len(agree))
                published.append(
                    Signal(
                        id=f"consensus:{c.symbol}:{c.interval}:{c.open_time}:{side.value}",
                        time=agree[0].time,
                        symbol=c.symbol,
                        strategy="consensus",
                        side=side,
                        strength=SignalStrength.from_rank(rank),
                        price=c.close,
                        interval=c.interval,
                        stop_loss=_tightest(agree, side, "stop_loss"),
                        take_profit=_tightest(agree, side, "take_profit"),
                        meta={"agree": ",".join(sorted(s.strategy for s in agree)), "k": k},
                    )
                )
        return published

    # --- runtime control (also forwarded to worker processes) ---
    def control(self, op: str, name: str, symbol: str | None = None, params: dict[str, Any] | None = None) -> Any:
        self._plans.clear()
        if op == "enable":
            self.registry.enable(name, symbol)
        elif op == "disable":
            self.registry.disable(name, symbol)
        elif op == "params":
            return self.registry.set_params(name, params or {}, symbol)
        else:
            raise ValueError(f"unknown control op {op!r}")
        return None


def _tightest(sigs: list[Signal], side: Any, attr: str) -> float | None:
    vals = [getattr(s, attr) for s in sigs if getattr(s, attr) is not None]
    if not vals:
        return None
    from roottrading.domain import Side

    # the most conservative level: nearest stop, nearest target
    return max(vals) if (side is Side.BUY) == (attr == "stop_loss") else min(vals)
