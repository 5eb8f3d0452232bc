"""FastRules: `SymbolRules.check` precomputed for the simulator's hot path.

Why: `SymbolRules.check` re-derives the same facts on every call (which filters are enabled, `type.value`
membership, Decimal-vs-int comparisons), which was ~30% of an order placement in benchmarks/execution.py.
The rules are frozen, so those facts are computed once per symbol here. The checks, their order and the errors
raised are exactly those of `SymbolRules.check` (tests/exchange_sim/test_fastrules.py compares both on random
rules and orders). Inputs that are not all `Decimal` (ints, floats from an odd caller) go to
`SymbolRules.check` itself, so even their errors stay identical.
"""

from __future__ import annotations

from decimal import Decimal

from roottrading.domain import OrderType, Side
from roottrading.exchange.errors import FilterFailure, InvalidMessage
from roottrading.exchange.filters import InvalidOrderTypeForSymbol, SymbolRules

ZERO = Decimal(0)
_MARKET = OrderType.MARKET
_BUY = Side.BUY
_STOP_TYPES = (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)


class FastRules:
    """Per-symbol precomputed filter checks. `check(...)` has the signature and behaviour of SymbolRules.check."""

    __slots__ = (
        "ask_down",
        "ask_up",
        "bid_down",
        "bid_up",
        "max_n_limit",
        "max_n_market",
        "max_notional",
        "max_price",
        "max_price_on",
        "max_qty",
        "max_qty_on",
        "min_n_limit",
        "min_n_market",
        "min_notional",
        "min_price",
        "min_price_on",
        "min_qty",
        "min_qty_on",
        "mkt_hi",
        "mkt_hi_on",
        "mkt_lo",
        "mkt_lo_on",
        "mkt_lot",
        "mkt_step",
        "mkt_step_on",
        "notional",
        "percent",
        "rules",
        "step",
        "step_on",
        "tick",
        "tick_on",
        "types",
    )

    def __init__(self, rules: SymbolRules) -> None:
        r = rules
        self.rules = r
        self.types = frozenset(t for t in OrderType if t.value in r.order_types)
        self.min_price, self.max_price, self.tick = r.min_price, r.max_price, r.tick_size
        self.min_price_on, self.max_price_on, self.tick_on = r.min_price > 0, r.max_price > 0, r.tick_size > 0
        self.min_qty, self.max_qty, self.step = r.min_qty, r.max_qty, r.step_size
        self.min_qty_on, self.max_qty_on, self.step_on = r.min_qty > 0, r.max_qty > 0, r.step_size > 0
        self.mkt_lot = r.market_step_size is not None
        self.mkt_lo, self.mkt_hi = r.market_min_qty or ZERO, r.market_max_qty or ZERO
        self.mkt_step = r.market_step_size if r.market_step_size is not None else ZERO
        self.mkt_lo_on, self.mkt_hi_on, self.mkt_step_on = self.mkt_lo > 0, self.mkt_hi > 0, self.mkt_step > 0
        self.notional = r.notional_filter
        self.min_notional, self.max_notional = r.min_notional, r.max_notional
        on = r.notional_filter is not None
        self.min_n_limit = on and r.min_notional > 0
        self.max_n_limit = on and r.max_notional > 0
        self.min_n_market = self.min_n_limit and r.min_notional_apply_to_market
        self.max_n_market = self.max_n_limit and r.max_notional_apply_to_market
        self.percent = r.percent_filter
        self.bid_up, self.bid_down = r.bid_multiplier_up, r.bid_multiplier_down
        self.ask_up, self.ask_down = r.ask_multiplier_up, r.ask_multiplier_down

    def _price(self, price: Decimal) -> None:
        if price <= ZERO:
            raise InvalidMessage("Invalid price.")
        if (
            (self.min_price_on and price < self.min_price)
            or (self.max_price_on and price > self.max_price)
            or (self.tick_on and (price - self.min_price) % self.tick != ZERO)
        ):
            raise FilterFailure("PRICE_FILTER")

    def check(
        self,
        side: Side,
        type: OrderType,
        quantity: Decimal,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
        last_price: Decimal | None = None,
    ) -> None:
        """Raise the Binance error this order would get; None when every filter passes."""
        if (
            quantity.__class__ is not Decimal
            or (price is not None and price.__class__ is not Decimal)
            or (stop_price is not None and stop_price.__class__ is not Decimal)
            or (last_price is not None and last_price.__class__ is not Decimal)
            or type.__class__ is not OrderType
        ):
            self.rules.check(side, type, quantity, price, stop_price, last_price)
            return
        if type not in self.types:
            raise InvalidOrderTypeForSymbol()
        # LOT_SIZE (+ MARKET_LOT_SIZE)
        if quantity <= ZERO:
            raise InvalidMessage("Invalid quantity.")
        if (
            (self.min_qty_on and quantity < self.min_qty)
            or (self.max_qty_on and quantity > self.max_qty)
            or (self.step_on and (quantity - self.min_qty) % self.step != ZERO)
        ):
            raise FilterFailure("LOT_SIZE")
        if type is _MARKET:
            if self.mkt_lot:
                lo = self.mkt_lo
                if (
                    (self.mkt_lo_on and quantity < lo)
                    or (self.mkt_hi_on and quantity > self.mkt_hi)
                    or (self.mkt_step_on and (quantity - lo) % self.mkt_step != ZERO)
                ):
                    raise FilterFailure("MARKET_LOT_SIZE")
            if last_price is not None and (self.min_n_market or self.max_n_market):
                notional = quantity * last_price
                if self.min_n_market and notional < self.min_notional:
                    raise FilterFailure(self.notional)  # type: ignore[arg-type]
                if self.max_n_market and notional > self.max_notional:
                    raise FilterFailure(self.notional)  # type: ignore[arg-type]
            return
        if price is None:
            raise InvalidMessage("Invalid price.")
        self._price(price)
        if type in _STOP_TYPES:
            if stop_price is None:
                raise InvalidMessage("Stop price is required for this order type.")
            self._price(stop_price)
        if self.min_n_limit or self.max_n_limit:
            notional = quantity * price
            if self.min_n_limit and notional < self.min_notional:
                raise FilterFailure(self.notional)  # type: ignore[arg-type]
            if self.max_n_limit and notional > self.max_notional:
                raise FilterFailure(self.notional)  # type: ignore[arg-type]
        if last_price is not None and self.percent is not None and last_price > ZERO:
            if side is _BUY:
                up, down = self.bid_up, self.bid_down
            else:
                up, down = self.ask_up, self.ask_down
            if (up > ZERO and price > last_price * up) or (down > ZERO and price < last_price * down):
                raise FilterFailure(self.percent)
