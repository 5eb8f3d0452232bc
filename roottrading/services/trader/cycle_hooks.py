"""The trader's side of the position callbacks (roottrading/strategies/cycle_callbacks.py): custom_stoploss,
custom_exit, confirm_exit, on_fill and position_adjustment, each call isolated.

Which instances: the strategies the coordinator calls confirm_entry / stake on. In one process (the demo, the
`replay` backtest, `roottrading run`) the trader asks its coordinator peer for them, so a strategy's state kept
from its fills is the state its confirm_entry reads; in split mode each process loads the same strategies from
the same settings (built-ins and STRATEGIES_DIR, default parameters), as the coordinator does. Loaded on first
use: the peer may be built after the trader. A strategy without position callbacks costs a dict lookup per
price and cycle.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import structlog

from roottrading.domain import Fill, TradeCycle
from roottrading.services.analyzer.engine import describe_exception
from roottrading.strategies.callbacks import overrides_callbacks
from roottrading.strategies.cycle_callbacks import (
    MAX_REASON,
    CycleView,
    accept_stop,
    profit_ratio,
)

log = structlog.get_logger(__name__)
Source = Callable[[], dict[str, Any]]
Count = Callable[[str], int]


class CycleHooks:
    """Calls one strategy's position callbacks for a cycle; answers what the trader should do."""

    def __init__(self, source: Source | None = None, adjustments: Count | None = None) -> None:
        self._source = source
        self._adjustments = adjustments  # cycle id -> additions filled (the trader's orders); None: 0
        self._hooks: dict[str, tuple[Any, frozenset[str]]] | None = None  # name -> (instance, overridden)
        self.failures: dict[str, int] = {}  # strategy -> callbacks that raised or answered nonsense
        self.vetoes: deque[dict[str, Any]] = deque(maxlen=100)  # the latest exit vetoes, newest last

    def _strategy(self, name: str, hook: str) -> Any | None:
        if self._hooks is None:
            found = self._source() if self._source is not None else {}
            self._hooks = {n: (s, frozenset(overrides_callbacks(s))) for n, s in found.items()}
        entry = self._hooks.get(name)
        return entry[0] if entry is not None and hook in entry[1] else None

    def defines(self, name: str, hook: str) -> bool:
        """True when strategy `name` overrides callback `hook`."""
        return self._strategy(name, hook) is not None

    def attribute(self, name: str, attr: str) -> Any:
        """A class attribute of strategy `name` (e.g. `exchange_stop`), None when the strategy is not loaded."""
        self._strategy(name, "")
        entry = (self._hooks or {}).get(name)
        return getattr(entry[0], attr, None) if entry is not None else None

    def _view(self, c: TradeCycle) -> CycleView:
        return CycleView.of(c, self._adjustments(c.id) if self._adjustments is not None else 0)

    def max_adjustments(self, name: str) -> int:
        """The strategy's `max_entry_adjustments` when it defines position_adjustment, else 0."""
        strat = self._strategy(name, "position_adjustment")
        return int(getattr(strat, "max_entry_adjustments", 1)) if strat is not None else 0

    def add_amount(self, c: TradeCycle, now: int, price: Decimal) -> Decimal | None:
        """The quote amount `position_adjustment` wants added to the cycle now, or None. The limit on additions
        and the funding are the trader's and the coordinator's (cycle_adjust.py)."""
        strat = self._strategy(c.strategy, "position_adjustment")
        if strat is None:
            return None
        raw = self._call(strat, "position_adjustment", self._view(c), now, price, profit_ratio(c.entry_price, price))
        if raw is None:
            return None
        amount = _positive(raw)
        if amount is None:
            self._fail(strat, "position_adjustment", f"returned {raw!r}, not a positive quote amount or None")
        return amount

    def new_stop(self, c: TradeCycle, now: int, price: Decimal) -> Decimal | None:
        """The stop `custom_stoploss` moves the cycle to, when the rules accept it (tighter, or the strategy
        allows loosening); None: keep the current stop."""
        strat = self._strategy(c.strategy, "custom_stoploss")
        if strat is None:
            return None
        raw = self._call(strat, "custom_stoploss", self._view(c), now, price, profit_ratio(c.entry_price, price))
        if raw is None:
            return None
        stop = _positive(raw)
        if stop is None:
            self._fail(strat, "custom_stoploss", f"returned {raw!r}, not a positive price or None")
            return None
        return stop if accept_stop(c.stop_loss, stop, bool(getattr(strat, "stoploss_can_loosen", False))) else None

    def exit_reason(self, c: TradeCycle, now: int, price: Decimal) -> str | None:
        """`custom_exit`'s reason to exit the cycle now (confirm_exit not asked yet), or None."""
        strat = self._strategy(c.strategy, "custom_exit")
        if strat is None:
            return None
        reason = self._call(strat, "custom_exit", self._view(c), now, price, profit_ratio(c.entry_price, price))
        if reason is None:
            return None
        if not isinstance(reason, str) or not reason.strip():
            self._fail(strat, "custom_exit", f"returned {reason!r}, not a reason string or None")
            return None
        return reason.strip()[:MAX_REASON]

    def veto_exit(self, c: TradeCycle, reason: str, price: Decimal, now: int) -> str | None:
        """`confirm_exit`'s veto of exit `reason` at `price`, or None. The trader asks only for the exits a
        strategy may veto (cycle_callbacks.VETOABLE_EXITS and custom exits): never for a protective one."""
        strat = self._strategy(c.strategy, "confirm_exit")
        if strat is None:
            return None
        veto = self._call(strat, "confirm_exit", self._view(c), reason, price)
        if veto is None:
            return None
        if not isinstance(veto, str) or not veto:
            self._fail(strat, "confirm_exit", f"returned {veto!r}, not a reason string or None")
            return None
        veto = veto[:200]
        self.vetoes.append({"cycle": c.id, "strategy": c.strategy, "exit": reason, "veto": veto, "time": now})
        log.info("exit vetoed by the strategy", cycle=c.id, strategy=c.strategy, exit=reason, veto=veto)
        return veto

    def filled(self, fill: Fill, c: TradeCycle) -> None:
        """Tell the cycle's strategy about one of its fills (`on_fill`); its answer is ignored."""
        strat = self._strategy(c.strategy, "on_fill")
        if strat is not None:
            self._call(strat, "on_fill", fill, self._view(c))

    def _call(self, strat: Any, hook: str, *args: Any) -> Any:
        try:
            return getattr(strat, hook)(*args)
        except Exception as exc:  # noqa: BLE001 - user code can raise anything: isolated, treated as no opinion
            self._fail(strat, hook, describe_exception(exc))
            return None

    def _fail(self, strat: Any, hook: str, error: str) -> None:
        self.failures[strat.name] = self.failures.get(strat.name, 0) + 1
        log.warning("strategy callback failed", strategy=strat.name, hook=hook, error=f"{hook}: {error}")


def _positive(raw: Any) -> Decimal | None:
    """`raw` as a positive finite Decimal, else None (a bool, NaN, 0, a string that is no number)."""
    if isinstance(raw, bool) or (isinstance(raw, float) and math.isnan(raw)):
        return None
    try:
        d = Decimal(str(raw))
    except InvalidOperation:
        return None
    return d if d.is_finite() and d > 0 else None
