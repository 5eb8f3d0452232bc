"""The coordinator's side of the strategy callbacks (roottrading/strategies/callbacks.py): one call per
entry signal that passed the filters, before sizing.

The coordinator may run in another process than the analyzer, so it loads the strategy classes itself (the
built-ins and STRATEGIES_DIR, without the bias check) and keeps one instance per strategy that defines a
callback, with default parameters: a callback should read what it needs from the request, not from
parameters changed at runtime in the analyzer. Strategies without callbacks cost a dict lookup. A trader in
the same process calls the same instances (`instances()`), so state a strategy keeps from its fills is the
state its confirm_entry sees.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

import structlog

from roottrading.domain import Signal
from roottrading.services.analyzer.engine import describe_exception
from roottrading.strategies.callbacks import EntryHooks, EntryRequest, LimitOrder, callback_instances

log = structlog.get_logger(__name__)
_NONE = EntryHooks()


class StrategyHooks:
    def __init__(self, strategies_dir: str | None, instances: dict[str, Any] | None = None) -> None:
        self._dir = strategies_dir
        self._hooks: dict[str, Any] | None = instances  # strategy name -> instance defining a callback
        self.failures: dict[str, int] = {}

    def _load(self) -> dict[str, Any]:
        if self._hooks is None:
            self._hooks = callback_instances(self._dir)
        return self._hooks

    def instances(self) -> dict[str, Any]:
        """The strategy instances this coordinator calls: a trader in the same process calls the same ones."""
        return self._load()

    def before_entry(self, s: Signal) -> EntryHooks:
        """The strategy's veto and stake for this entry signal (`_NONE` when it defines no callback)."""
        strat = self._load().get(s.strategy)
        if strat is None:
            return _NONE
        req = EntryRequest.of(s)
        errors: list[str] = []
        veto = self._call(strat, "confirm_entry", req, errors)
        if veto is not None and not isinstance(veto, str):
            errors.append(f"confirm_entry returned {type(veto).__name__}, not a reason string or None")
            veto = None
        if veto:
            return EntryHooks(veto=veto[:200], errors=tuple(errors))
        raw = self._call(strat, "stake", req, errors)
        stake: Decimal | None = None
        if raw is not None:
            try:
                stake = Decimal(str(raw))
            except InvalidOperation:
                stake = None
            if stake is None or not stake.is_finite() or stake <= 0 or (isinstance(raw, float) and math.isnan(raw)):
                errors.append(f"stake returned {raw!r}, not a positive amount")
                stake = None
        limit = self._limit_price(strat, req, errors)
        return EntryHooks(stake=stake, limit_price=limit, errors=tuple(errors))

    def _limit_price(self, strat: Any, req: EntryRequest, errors: list[str]) -> Decimal | None:
        """`order_type`'s answer as a limit price, None for a market order (also when the answer is invalid)."""
        raw = self._call(strat, "order_type", req, errors)
        if raw is None or (isinstance(raw, str) and raw.upper() == "MARKET"):
            return None
        if isinstance(raw, str) and raw.upper() == "LIMIT":
            return req.price
        if isinstance(raw, LimitOrder):
            try:
                price = Decimal(str(raw.price))
            except InvalidOperation:
                price = Decimal("NaN")
            if price.is_finite() and price > 0:
                return price
        errors.append(f"order_type returned {raw!r}, not None, 'MARKET', 'LIMIT' or LimitOrder(positive price)")
        return None

    def _call(self, strat: Any, hook: str, req: EntryRequest, errors: list[str]) -> Any:
        try:
            return getattr(strat, hook)(req)
        except Exception as exc:  # noqa: BLE001 - user code can raise anything: isolated, treated as no opinion
            msg = f"{hook}: {describe_exception(exc)}"
            self.failures[strat.name] = self.failures.get(strat.name, 0) + 1
            log.warning("strategy callback failed", strategy=strat.name, hook=hook, error=msg)
            errors.append(msg)
            return None
