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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from roottrading.domain import Side, Signal, SignalStrength, interval_ms
from roottrading.indicators import atr
from roottrading.strategies.params import Param, ParamError

REQUIRED_COLUMNS = ("open_time", "open", "high", "low", "close", "volume")
BUY, SELL, NONE = np.int8(1), np.int8(-1), np.int8(0)


@dataclass(frozen=True)
class Bars:
    """The candle frame as float64 arrays (open_time int64 ms), what `generate` works on."""

    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    #: per-object memo of derived arrays shared by several strategies on the same candle (e.g. ATR for stops)
    cache: dict[Any, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.close)

    def cached(self, key: Any, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """Compute once per Bars object: the live analyzer evaluates every strategy on one Bars per candle.
        Callers must treat the returned array as read-only."""
        v = self.cache.get(key)
        if v is None:
            v = self.cache[key] = compute()
        return v

    def tail(self, n: int) -> Bars:
        """The last `n` bars as views (no copy)."""
        if n >= len(self):
            return self
        return Bars(
            open_time=self.open_time[-n:],
            open=self.open[-n:],
            high=self.high[-n:],
            low=self.low[-n:],
            close=self.close[-n:],
            volume=self.volume[-n:],
        )

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Bars:
        missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"candle frame is missing columns {missing}; need {list(REQUIRED_COLUMNS)}")
        cols = {c: np.ascontiguousarray(frame[c].to_numpy(dtype=np.float64)) for c in REQUIRED_COLUMNS[1:]}
        return cls(
            open_time=frame["open_time"].to_numpy(dtype=np.int64),
            open=cols["open"],
            high=cols["high"],
            low=cols["low"],
            close=cols["close"],
            volume=cols["volume"],
        )


@dataclass
class Entries:
    """What `generate` returns. side: +1 BUY / -1 SELL / 0 none; strength: rank 0..3 (WEAK..VERY_STRONG).

    stop_loss / take_profit: absolute prices (NaN = let the base class derive them from ATR multiples).
    exit_long / exit_short: rows where an open position of that direction should be closed.
    """

    side: np.ndarray
    strength: np.ndarray
    exit_long: np.ndarray | None = None
    exit_short: np.ndarray | None = None
    stop_loss: np.ndarray | None = None
    take_profit: np.ndarray | None = None


@dataclass
class SignalFrame:
    """Per-row output of `signals`. All arrays have the frame's length."""

    open_time: np.ndarray
    side: np.ndarray  # int8: +1 BUY, -1 SELL, 0 none
    strength: np.ndarray  # int8 rank 0..3, meaningful where side != 0
    exit_long: np.ndarray  # bool
    exit_short: np.ndarray  # bool
    stop_loss: np.ndarray  # float64 absolute price, NaN = none
    take_profit: np.ndarray
    trailing_pct: np.ndarray
    regime: np.ndarray | None = None  # object array of regime labels when Ride-or-React ran
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.side)

    @property
    def buys(self) -> np.ndarray:
        return np.asarray(self.side == BUY)

    @property
    def sells(self) -> np.ndarray:
        return np.asarray(self.side == SELL)

    def row(self, i: int) -> dict[str, Any] | None:
        """The entry at row i as plain Python values, or None when there is none."""
        if self.side[i] == NONE:
            return None
        return {
            "open_time": int(self.open_time[i]),
            "side": Side.BUY if self.side[i] == BUY else Side.SELL,
            "strength": SignalStrength.from_rank(int(self.strength[i])),
            "stop_loss": _opt(self.stop_loss[i]),
            "take_profit": _opt(self.take_profit[i]),
            "trailing_pct": _opt(self.trailing_pct[i]),
            "regime": None if self.regime is None else self.regime[i],
        }

    def to_pandas(self) -> pd.DataFrame:
        df = pd.DataFrame(
            {
                "open_time": self.open_time,
                "side": self.side,
                "strength": self.strength,
                "exit_long": self.exit_long,
                "exit_short": self.exit_short,
                "stop_loss": self.stop_loss,
                "take_profit": self.take_profit,
                "trailing_pct": self.trailing_pct,
            }
        )
        if self.regime is not None:
            df["regime"] = self.regime
        return df


def _opt(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


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

    # ---- evaluation -------------------------------------------------------------------------
    def signals(self, frame: pd.DataFrame) -> SignalFrame:
        """Entries for every row of `frame` (vectorised). Rows before `warmup` never signal."""
        return self.signals_bars(Bars.from_frame(frame))

    def signals_bars(self, bars: Bars) -> SignalFrame:
        """`signals` on arrays: the live analyzer's path (no pandas per strategy and candle)."""
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
        exit_long = np.zeros(n, bool) if e.exit_long is None else np.asarray(e.exit_long, bool).copy()
        exit_short = np.zeros(n, bool) if e.exit_short is None else np.asarray(e.exit_short, bool).copy()
        exit_long[: min(n, self.warmup)] = exit_short[: min(n, self.warmup)] = False
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
        return SignalFrame(
            open_time=bars.open_time,
            side=side,
            strength=strength,
            exit_long=exit_long,
            exit_short=exit_short,
            stop_loss=sl,
            take_profit=tp,
            trailing_pct=tr,
            regime=regime_labels,
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
        return self.latest_signal_bars(Bars.from_frame(frame), symbol, interval)

    def latest_signal_bars(self, bars: Bars, symbol: str, interval: str) -> Signal | None:
        """`latest_signal` on arrays of closed candles (what the analyzer calls once per candle).

        Same result as `signals_bars(bars).row(-1)` (a test holds it to that), but the stops are computed
        for the last row only, which halves the cost per strategy in the live hot path.
        """
        n = len(bars)
        if n <= self.warmup:
            return None
        if self.ride_or_react:  # regime adaptation needs whole arrays: take the general path
            row = self.signals_bars(bars).row(n - 1)
        else:
            row = self._last_row(bars)
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
            meta={"open_time": open_time},
        )

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
        esl = math.nan if e.stop_loss is None else float(e.stop_loss[-1])
        etp = math.nan if e.take_profit is None else float(e.take_profit[-1])
        sgn = 1.0 if side > 0 else -1.0
        close = float(bars.close[-1])
        a = float(bars.cached(("atr", 14), lambda: atr(bars.high, bars.low, bars.close, 14))[-1]) if n > 14 else np.nan
        sl = close - sgn * self.sl_atr * a if self.sl_atr > 0 else np.nan
        tp = close + sgn * self.tp_atr * a if self.tp_atr > 0 else np.nan
        if not math.isnan(esl):
            sl = esl
        if not math.isnan(etp):
            tp = etp
        return {
            "open_time": int(bars.open_time[-1]),
            "side": Side.BUY if side > 0 else Side.SELL,
            "strength": SignalStrength.from_rank(int(min(3, max(0, rank)))),
            "stop_loss": None if np.isnan(sl) else sl,
            "take_profit": None if np.isnan(tp) else tp,
            "trailing_pct": float(self.trailing_pct) if self.trailing_pct > 0 else None,
            "regime": None,
        }

    def describe(self) -> dict[str, Any]:
        """JSON-able description (REST/dashboard): name, doc, style, warm-up, parameters and values."""
        return {
            "name": self.name,
            "doc": (type(self).__doc__ or "").strip(),
            "style": self.style,
            "timeframes": list(self.timeframes),
            "warmup": self.warmup,
            "params": {k: {**p.describe(), "value": self._param_values[k]} for k, p in self.param_specs().items()},
        }
