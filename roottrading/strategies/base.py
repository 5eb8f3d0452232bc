"""The strategy API: one small class per strategy, one vectorised function for live, paper and backtest.

A strategy subclasses `BaseStrategy`, sets `name`, declares `Param`s and implements
`generate(bars) -> Entries` over whole NumPy arrays. `signals(frame)` (template method) validates the
frame, calls `generate`, blanks the warm-up rows, applies the optional "Ride or React" regime
adaptation and attaches stop-loss / take-profit / trailing suggestions. `latest_signal` evaluates
the same thing and returns the last closed row as a `roottrading.domain.Signal`, so the live
analyzer and the backtester cannot disagree about what the strategy said.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from roottrading.domain import Side, Signal, SignalStrength, interval_ms
from roottrading.indicators import atr
from roottrading.strategies.bars import REQUIRED_COLUMNS as REQUIRED_COLUMNS
from roottrading.strategies.bars import Bars as Bars
from roottrading.strategies.frame import BUY as BUY
from roottrading.strategies.frame import NONE as NONE
from roottrading.strategies.frame import SELL as SELL
from roottrading.strategies.frame import Entries as Entries
from roottrading.strategies.frame import SignalFrame as SignalFrame
from roottrading.strategies.frame import _opt
from roottrading.strategies.outputs import check_tag
from roottrading.strategies.params import Param, ParamError
from roottrading.strategies.state import StrategyState

#: The evaluation-window rule, the one place it lives. Each candle is evaluated on the trailing
#: `evaluation_window(strategy)` closed candles: by the live analyzer (its tail per strategy), by the
#: warm-up after a restart (it loads the largest window) and by offline `signals()` (each row on the same
#: trailing window). Recursive indicators (EMA, RSI, ADX, ATR) depend on where the input starts, so the
#: three must agree on it or offline and live signals differ near thresholds.
MIN_EVALUATION_WINDOW = 100
WARMUP_MULTIPLE = 3  # recursive indicators converge well within 3x their lookback


def evaluation_window(strategy: Any, cap: int = 0) -> int:
    """Closed candles each row of `strategy` is evaluated on: 3x its warm-up, at least 100, at most `cap`
    (the analyzer's fixed `window` setting, 0 = none)."""
    want = max(MIN_EVALUATION_WINDOW, WARMUP_MULTIPLE * int(strategy.warmup))
    return min(want, cap) if cap else want


def grade(score: np.ndarray, moderate: float, strong: float, very_strong: float) -> np.ndarray:
    """Map a non-negative score to a strength rank: < moderate WEAK, < strong MODERATE, ... (NaN -> WEAK)."""
    s = np.asarray(score, dtype=np.float64)
    out = np.searchsorted(np.array([moderate, strong, very_strong]), s, side="right").astype(np.int8)
    out[np.isnan(s)] = 0  # searchsorted sorts NaN last; a missing score is WEAK
    return out


class BaseStrategy:
    """Base class of every strategy. Subclasses set `name`, declare `Param`s, implement `generate`."""

    name: ClassVar[str] = ""
    #: "trend" (follows moves), "reversal" (fades them), "breakout"; drives Ride-or-React adaptation
    style: ClassVar[str] = "trend"
    #: extra intervals the strategy reads besides the base one (resampled from the base frame)
    timeframes: ClassVar[tuple[str, ...]] = ()
    #: reserved for a future derivatives adapter; True is refused at load on spot (see outputs.py)
    can_short: ClassVar[bool] = False
    #: other symbols / timeframes read, e.g. (("ETHUSDT", "1h"),): `bars.inform(symbol, interval)` in
    #: generate, closed candles only (see informative.py); and how many higher-timeframe candles each gets
    informative: ClassVar[Sequence[tuple[str, str]]] = ()
    informative_window: ClassVar[int] = 100
    #: True lets `custom_stoploss` move a cycle's stop down (away from the price); default: only tighter
    stoploss_can_loosen: ClassVar[bool] = False
    #: True: the trader keeps this strategy's stop as a STOP_LOSS_LIMIT order on the exchange, so it holds
    #: while the platform is down (docs/trade-cycle.md); False: never; None: the TRADER_EXCHANGE_STOPS setting
    exchange_stop: ClassVar[bool | None] = None
    #: the most additions `position_adjustment` may make to one cycle (filled ones count)
    max_entry_adjustments: ClassVar[int] = 1
    #: how long (market time) a limit entry chosen by `order_type` may rest before the trader cancels the rest
    limit_entry_timeout_s: ClassVar[float] = 600.0

    sl_atr = Param(2.0, 0.0, 10.0, 0.5, doc="stop-loss distance in ATR(14) multiples; 0 = none")
    tp_atr = Param(3.0, 0.0, 20.0, 0.5, doc="take-profit distance in ATR(14) multiples; 0 = none")
    trailing_pct = Param(0.0, 0.0, 20.0, 0.5, doc="trailing stop in percent of price; 0 = none")
    ride_or_react = Param(False, doc="adapt strength to the market regime (trend vs range)")

    def __init__(self, **params: Any) -> None:
        self._param_values: dict[str, Any] = {k: p.default for k, p in self.param_specs().items()}
        if params:
            self.set_params(**params)

    #: optional cheap pre-check for the last row, see `may_fire`; None = always run `generate`
    may_fire: ClassVar[Callable[..., bool] | None] = None
    #: True when `may_fire` was written by the same class that wrote `generate` (a subclass that
    #: overrides only `generate` must not inherit its parent's pre-check)
    _fast_last: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for p in cls.__dict__.values():
            if isinstance(p, Param):
                p.owner = cls.name or cls.__name__
        gen = next(k for k in cls.__mro__ if "generate" in k.__dict__)
        fast = next((k for k in cls.__mro__ if "may_fire" in k.__dict__), BaseStrategy)
        cls._fast_last = fast is gen and fast.__dict__["may_fire"] is not None

    # ---- parameters -------------------------------------------------------------------------
    @classmethod
    def param_specs(cls) -> dict[str, Param[Any]]:
        """Every declared parameter, base-class ones included, subclass overrides winning."""
        specs: dict[str, Param[Any]] = {}
        for klass in reversed(cls.__mro__):
            for k, v in vars(klass).items():
                if isinstance(v, Param):
                    specs[k] = v
        return specs

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._param_values)

    def set_params(self, **params: Any) -> None:
        """Validate all, then apply all: a bad value leaves the strategy unchanged."""
        specs = self.param_specs()
        unknown = sorted(set(params) - set(specs))
        if unknown:
            raise ParamError(f"{self.name}: unknown parameter(s) {unknown}; known: {sorted(specs)}")
        new = dict(self._param_values)
        for k, v in params.items():
            new[k] = specs[k].validate(v, self.name)
        self.check_params(new)
        self._param_values = new

    def check_params(self, values: dict[str, Any]) -> None:
        """Cross-parameter rules (e.g. fast < slow); raise ParamError. Override when needed."""

    # ---- optional callbacks in the coordinator's decision path (strategies/callbacks.py) -----
    def confirm_entry(self, request: Any) -> str | None:
        """Override to veto an entry at decision time: return the reason (stored as the decision), or None."""
        return None

    def stake(self, request: Any) -> Any:
        """Override to choose the quote amount of an entry (still capped by pockets and risk); None = default."""
        return None

    def order_type(self, request: Any) -> Any:
        """Override to place the entry as a limit order: "LIMIT" (at the signal's price) or
        `LimitOrder(price)` (strategies/callbacks.py); None or "MARKET" = a market order (the default)."""
        return None

    # ---- optional position callbacks, called by the trader on open cycles (strategies/cycle_callbacks.py) --
    def custom_stoploss(self, cycle: Any, now: int, price: Any, profit: Any) -> Any:
        """Override to move the cycle's stop: return the new stop price (applied only when tighter, unless
        `stoploss_can_loosen`), or None to keep it. `cycle` is a CycleView, `now` UTC ms, `price` and `profit`
        (a ratio of the entry price) Decimals."""
        return None

    def custom_exit(self, cycle: Any, now: int, price: Any, profit: Any) -> str | None:
        """Override to exit the cycle at market now: return the exit reason, or None to stay in."""
        return None

    def confirm_exit(self, cycle: Any, reason: str, price: Any) -> str | None:
        """Override to veto an exit by signal, take-profit or custom exit: return why (logged), or None.
        Stop-loss and trailing-stop exits are never offered for a veto."""
        return None

    def on_fill(self, fill: Any, cycle: Any) -> None:
        """Override to keep state from the strategy's own fills (entry and exit): a `Fill` and the CycleView
        as updated by it."""
        return None

    def position_adjustment(self, cycle: Any, now: int, price: Any, profit: Any) -> Any:
        """Override to add to the open position (DCA): return a quote amount to buy now, or None. The addition
        is funded like an entry (pocket reservation, risk check) and is at most `max_entry_adjustments` per
        cycle (strategies/cycle_callbacks.py)."""
        return None

    # ---- persistent state ---------------------------------------------------------------------
    def state(self, symbol: str | None = None) -> StrategyState:
        """The strategy's own key/value document for `symbol` (default: the symbol being evaluated), kept
        across candles and, in the analyzer, across restarts (strategies/state.py). Values must be JSON."""
        key = symbol or self.__dict__.get("_symbol") or ""
        states: dict[str, StrategyState] = self.__dict__.setdefault("_states", {})
        st = states.get(key)
        if st is None:
            st = states[key] = StrategyState()
        return st

    def bind_state(self, symbol: str, state: StrategyState) -> None:
        """Use `state` (owned by the analyzer, which saves and restores it) for `symbol`."""
        self.__dict__.setdefault("_states", {})[symbol] = state

    def with_params(self, **params: Any) -> BaseStrategy:
        return type(self)(**{**self._param_values, **params})

    # ---- the contract -----------------------------------------------------------------------
    @property
    def warmup(self) -> int:
        """Candles needed before the first valid signal. Override with the real indicator lookback."""
        return 50

    def generate(self, bars: Bars) -> Entries:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement generate(bars)")

    # `may_fire(self, bars) -> bool` (optional, class attribute above): False only when the last row of
    # `generate(bars)` certainly has no signal, decided with a few scalars. The live analyzer runs 27
    # strategies per candle and most are quiet; whole-array bookkeeping (masks, grades, shifts) on ~100
    # rows costs more than the indicators. When it says True, `generate` decides as before, so results
    # cannot change as long as it never says False wrongly (tests/strategies/test_fast_last.py).

    def indicators(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Optional: the series the strategy looks at, for charts and debugging."""
        return {}

    def stops(self, bars: Bars, side: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Default exits: ATR(14) multiples from the close; trailing in percent. Override for custom stops."""
        n = len(bars)
        a = bars.cached(("atr", 14), lambda: atr(bars.high, bars.low, bars.close, 14)) if n > 14 else np.full(n, np.nan)
        sgn = side.astype(np.float64)
        c = bars.close
        sl = c - sgn * self.sl_atr * a if self.sl_atr > 0 else np.full(n, np.nan)
        tp = c + sgn * self.tp_atr * a if self.tp_atr > 0 else np.full(n, np.nan)
        tr = np.full(n, self.trailing_pct if self.trailing_pct > 0 else np.nan)
        off = side == NONE
        sl[off] = tp[off] = tr[off] = np.nan
        return sl, tp, tr

    # ---- helpers for generate ---------------------------------------------------------------
    @staticmethod
    def entries(
        buy: np.ndarray | None = None,
        sell: np.ndarray | None = None,
        strength: np.ndarray | SignalStrength | int = SignalStrength.MODERATE,
        buy_strength: np.ndarray | None = None,
        sell_strength: np.ndarray | None = None,
        **extra: Any,
    ) -> Entries:
        """Build Entries from boolean masks. A row that is both buy and sell gets no signal."""
        if {"exit_long", "exit_short", "enter_long", "enter_short"} & set(extra):
            raise ValueError(
                "entries() takes buy=/sell=: on spot a SELL signal is the exit (the coordinator sells the open "
                "cycles); for the explicit form call outputs(enter_long=..., exit_long=..., enter_tag=..., exit_tag=...)"
            )
        ref = buy if buy is not None else sell
        if ref is None:
            raise ValueError("entries() needs buy and/or sell")
        n = len(ref)
        side = np.zeros(n, np.int8)
        if buy is not None and sell is not None:
            b, s = np.asarray(buy, bool), np.asarray(sell, bool)
            side[b & ~s] = BUY
            side[s & ~b] = SELL
        elif buy is not None:
            side[np.asarray(buy, bool)] = BUY
        else:
            side[np.asarray(sell, bool)] = SELL
        if isinstance(strength, SignalStrength):
            st = np.full(n, strength.rank, np.int8)
        elif np.ndim(strength) == 0:
            st = np.full(n, int(strength), np.int8)
        else:
            st = np.array(strength, np.int8)
        if buy_strength is not None:
            mask = side == BUY
            st[mask] = np.asarray(buy_strength, np.int8)[mask]
        if sell_strength is not None:
            mask = side == SELL
            st[mask] = np.asarray(sell_strength, np.int8)[mask]
        return Entries(side=side, strength=st, **extra)

    @classmethod
    def outputs(
        cls,
        enter_long: np.ndarray | None = None,
        exit_long: np.ndarray | None = None,
        *,
        enter_short: np.ndarray | None = None,
        exit_short: np.ndarray | None = None,
        enter_tag: str | Any | None = None,
        exit_tag: str | Any | None = None,
        strength: np.ndarray | SignalStrength | int = SignalStrength.MODERATE,
        **extra: Any,
    ) -> Entries:
        """Entries by explicit action: enter long / exit long masks, each with an optional tag (a string for
        every row, or a per-row sequence of str | None). A row that both enters and exits does nothing.
        enter_short / exit_short are reserved: any row set raises `ShortNotSupported` on spot."""
        from roottrading.strategies.outputs import merge_tags, refuse_shorts

        refuse_shorts(enter_short, exit_short)
        e = cls.entries(buy=enter_long, sell=exit_long, strength=strength, **extra)
        e.tag = merge_tags(e.side, enter_tag, exit_tag)
        return e

    # ---- evaluation -------------------------------------------------------------------------
    def signals(
        self, frame: pd.DataFrame, cap: int = 0, informative: Mapping[str, pd.DataFrame | Bars] | None = None
    ) -> SignalFrame:
        """Entries for every row of `frame`, each row evaluated on the trailing `evaluation_window(self, cap)`
        rows, exactly as the live analyzer evaluates that candle. Rows before `warmup` never signal.
        informative: symbol -> that symbol's candles at the frame's interval, for a strategy declaring
        `informative` (a pair not supplied shows no candle, as live before its data arrives)."""
        return self.signals_windowed(Bars.from_frame(frame), cap, informative)

    def signals_windowed(
        self, bars: Bars, cap: int = 0, informative: Mapping[str, pd.DataFrame | Bars] | None = None
    ) -> SignalFrame:
        """`signals` on arrays. The first `evaluation_window` rows come from one vectorised pass (a row's
        window is then the whole prefix, and strategies are causal); each later row is evaluated on its own
        window by the same function the live analyzer calls (`_evaluate_last`), so both agree exactly.
        With informative pairs every row is evaluated on its own (its pairs are cut at its close)."""
        size = evaluation_window(self, cap)
        n = len(bars)
        if self.informative:
            from roottrading.strategies.informative import attach, sources

            src, base_ms = sources(informative, bars)
            first, head = 0, None
            view: Callable[[int], Bars] = lambda i: attach(self, bars.window(i + 1, size), src, base_ms)  # noqa: E731
        else:
            head = self.signals_bars(bars.window(min(n, size), size))
            if n <= size:
                return head
            first, view = size, lambda i: bars.window(i + 1, size)
        side = np.zeros(n, np.int8)
        strength = np.zeros(n, np.int8)
        sl, tp, tr = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        regime = np.full(n, None, dtype=object) if self.ride_or_react else None
        tag = np.full(n, None, dtype=object)
        if head is not None:
            if head.tag is not None:
                tag[:size] = head.tag
            side[:size], strength[:size] = head.side, head.strength
            sl[:size], tp[:size], tr[:size] = head.stop_loss, head.take_profit, head.trailing_pct
            if regime is not None and head.regime is not None:
                regime[:size] = head.regime
        for i in range(first, n):
            row = self._evaluate_last(view(i))
            if row is None:
                continue
            side[i] = BUY if row["side"] is Side.BUY else SELL
            strength[i] = row["strength"].rank
            sl[i], tp[i], tr[i] = (
                np.nan if row[k] is None else row[k] for k in ("stop_loss", "take_profit", "trailing_pct")
            )
            if regime is not None:
                regime[i] = row["regime"]
            tag[i] = row["tag"]
        return SignalFrame(
            open_time=bars.open_time,
            side=side,
            strength=strength,
            stop_loss=sl,
            take_profit=tp,
            trailing_pct=tr,
            regime=regime,
            tag=tag if any(t is not None for t in tag) else None,
            meta={"evaluation_window": size},
        )

    def signals_bars(self, bars: Bars) -> SignalFrame:
        """One vectorised pass over all of `bars` (every row sees the history from row 0). The live analyzer
        reads its last row on each candle's window; over longer histories use `signals_windowed`."""
        n = len(bars)
        if n == 0:
            e = Entries(np.zeros(0, np.int8), np.zeros(0, np.int8))
        else:
            e = self.generate(bars)
        side = np.asarray(e.side, np.int8).copy()
        strength = np.clip(np.asarray(e.strength, np.int8), 0, 3).astype(np.int8)
        if len(side) != n or len(strength) != n:
            raise ValueError(f"{self.name}: generate returned {len(side)} rows for a {n}-row frame")
        side[: min(n, self.warmup)] = NONE
        regime_labels = None
        if self.ride_or_react and n:
            from roottrading.strategies.regime import adapt, detect_regime

            reg = detect_regime(bars)
            side, strength = adapt(side, strength, reg, self.style)
            regime_labels = reg.labels()
        sl, tp, tr = self.stops(bars, side)
        if e.stop_loss is not None:
            sl = np.where(np.isnan(e.stop_loss), sl, e.stop_loss)
        if e.take_profit is not None:
            tp = np.where(np.isnan(e.take_profit), tp, e.take_profit)
        sl[side == NONE] = tp[side == NONE] = np.nan
        tag = None
        if e.tag is not None:
            tag = np.asarray(e.tag, dtype=object).copy()
            if len(tag) != n:
                raise ValueError(f"{self.name}: generate returned {len(tag)} tags for a {n}-row frame")
            tag[side == NONE] = None
            tag[:] = [check_tag(t) for t in tag]
        return SignalFrame(
            open_time=bars.open_time,
            side=side,
            strength=strength,
            stop_loss=sl,
            take_profit=tp,
            trailing_pct=tr,
            regime=regime_labels,
            tag=tag,
        )

    def latest_signal(self, frame: pd.DataFrame, symbol: str, interval: str) -> Signal | None:
        """The signal of the last closed candle, or None. Deterministic id: replays deduplicate.

        Rows with `closed == False` (if the frame has that column) are dropped first: a strategy
        never acts on a bar that can still change.
        """
        if "closed" in frame.columns:
            frame = frame[frame["closed"].astype(bool)]
        if len(frame) <= self.warmup:
            return None
        return self.latest_signal_bars(Bars.from_frame(frame.tail(evaluation_window(self))), symbol, interval)

    def latest_signal_bars(self, bars: Bars, symbol: str, interval: str) -> Signal | None:
        """`latest_signal` on arrays of closed candles (what the analyzer calls once per candle).

        Same result as `signals_bars(bars).row(-1)` (a test holds it to that), but `stops()` runs only when
        the last row fires, which halves the cost per strategy in the live hot path.
        """
        self._symbol = symbol  # what `state()` defaults to during this evaluation
        row = self._evaluate_last(bars)
        if row is None:
            return None
        open_time = row["open_time"]
        return Signal(
            id=f"{self.name}:{symbol}:{interval}:{open_time}",
            time=open_time + interval_ms(interval),
            symbol=symbol,
            strategy=self.name,
            side=row["side"],
            strength=row["strength"],
            price=float(bars.close[-1]),
            interval=interval,
            stop_loss=row["stop_loss"],
            take_profit=row["take_profit"],
            trailing_pct=row["trailing_pct"],
            regime=row["regime"],
            tag=row["tag"],
            meta={"open_time": open_time},
        )

    def _evaluate_last(self, bars: Bars) -> dict[str, Any] | None:
        """The last row's entry, or None: what live evaluation and `signals_windowed` both call per row."""
        n = len(bars)
        if n <= self.warmup:
            return None
        if self.ride_or_react:  # regime adaptation needs whole arrays: take the general path
            return self.signals_bars(bars).row(n - 1)
        return self._last_row(bars)

    def _last_row(self, bars: Bars) -> dict[str, Any] | None:
        n = len(bars)
        if self._fast_last and not self.may_fire(bars):  # type: ignore[misc]
            return None  # the usual case: most strategies are quiet on most candles
        e = self.generate(bars)
        if len(e.side) != n or len(e.strength) != n:
            raise ValueError(f"{self.name}: generate returned {len(e.side)} rows for a {n}-row frame")
        side = int(e.side[-1])
        if side == 0:
            return None
        rank = int(e.strength[-1])
        # the stops come from `stops()` itself (a strategy may override it), on the side array the vectorised
        # path would pass: one implementation of the exits, live and offline
        sides = np.asarray(e.side, np.int8).copy()
        sides[: min(n, self.warmup)] = NONE
        sl_a, tp_a, tr_a = self.stops(bars, sides)
        sl, tp, tr = float(sl_a[-1]), float(tp_a[-1]), float(tr_a[-1])
        if e.stop_loss is not None and not math.isnan(esl := float(e.stop_loss[-1])):
            sl = esl
        if e.take_profit is not None and not math.isnan(etp := float(e.take_profit[-1])):
            tp = etp
        return {
            "open_time": int(bars.open_time[-1]),
            "side": Side.BUY if side > 0 else Side.SELL,
            "strength": SignalStrength.from_rank(int(min(3, max(0, rank)))),
            "stop_loss": _opt(sl),
            "take_profit": _opt(tp),
            "trailing_pct": _opt(tr),
            "regime": None,
            "tag": None if e.tag is None else check_tag(e.tag[-1]),
        }

    def describe(self) -> dict[str, Any]:
        """JSON-able description (REST/dashboard): name, doc, style, warm-up, parameters and values."""
        return {
            "name": self.name,
            "doc": (type(self).__doc__ or "").strip(),
            "style": self.style,
            "timeframes": list(self.timeframes),
            "informative": [list(p) for p in self.informative],
            "warmup": self.warmup,
            "params": {k: {**p.describe(), "value": self._param_values[k]} for k, p in self.param_specs().items()},
        }
