"""The Exchange port: what the trader and the portfolio need from an exchange, and nothing else.

Why one protocol: live Binance, the fake Binance server and the in-process simulator are interchangeable
behind it, so the trader never knows which mode it runs in (DESIGN.md, principle 1).

Contract, shared by every implementation:
- Money is Decimal, time is UTC epoch ms, types are roottrading.domain's (Order, Fill, Balance).
- `client_order_id` is chosen by the caller (deterministic ids make retries idempotent). When a call's
  outcome is unknown (timeout, crash), ask `get_order(symbol, client_order_id)`; `NoSuchOrder` (-2013) means
  the exchange never accepted it.
- Failures raise `roottrading.exchange.errors.BinanceError` subclasses with Binance's codes.
- Updates (order state changes with their fill, balance changes) are pushed to callbacks registered with
  `subscribe_updates`; the returned function unsubscribes. Callbacks may be sync or async.
- Optional: `async price_at(symbol, time_ms) -> Decimal | None`, a symbol's price at a time (None when
  unknown). The trader values fees paid in a third asset (BNB) with it when its own last prices do not
  have that asset; an adapter without it leaves such fees unpriced (reported, never counted as 0).
  Not part of the Protocol so that minimal adapters (test fakes) still satisfy it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Protocol, runtime_checkable

import msgspec

from roottrading.domain import Balance, Fill, Order, OrderType, Side, TimeInForce
from roottrading.exchange.filters import SymbolRules


class OrderUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """An order changed (accepted, filled, triggered, canceled, expired). `fill` is set for a trade.

    Mirrors Binance's executionReport: `execution_type` is NEW | TRADE | CANCELED | EXPIRED | REJECTED | TRIGGERED.
    (TRIGGERED is a simulator extra: a stop order's condition was met and it is now working as a limit order.)"""

    time: int
    execution_type: str
    order: Order
    fill: Fill | None = None
    order_list_id: int = -1


class BalanceUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """Balances that changed (Binance's outboundAccountPosition): only the touched assets."""

    time: int
    balances: tuple[Balance, ...]


ExchangeUpdate = OrderUpdate | BalanceUpdate
UpdateCallback = Callable[[ExchangeUpdate], Awaitable[None] | None]


class OrderList(msgspec.Struct, kw_only=True):
    """An OCO pair (Binance orderList). `list_status` is EXEC_STARTED while both legs live, then ALL_DONE."""

    order_list_id: int
    list_client_order_id: str
    symbol: str
    list_status: str
    orders: list[Order]
    transaction_time: int = 0


@runtime_checkable
class Exchange(Protocol):
    """Async exchange port. See the module docstring for the shared contract."""

    async def exchange_info(self) -> dict[str, SymbolRules]:
        """Rules of every tradable symbol, by symbol."""
        ...

    async def symbol_rules(self, symbol: str) -> SymbolRules:
        """Rules of one symbol; raises InvalidSymbol (-1121) for an unknown one."""
        ...

    async def balances(self) -> dict[str, Balance]:
        """Every asset's free and locked amounts, by asset."""
        ...

    async def place_order(
        self,
        *,
        symbol: str,
        side: Side,
        type: OrderType,
        client_order_id: str,
        quantity: Decimal | None = None,
        quote_quantity: Decimal | None = None,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
        time_in_force: TimeInForce = TimeInForce.GTC,
    ) -> Order:
        """Send an order. Returns its state right after acceptance (possibly already FILLED)."""
        ...

    async def place_oco(
        self,
        *,
        symbol: str,
        side: Side,
        quantity: Decimal,
        price: Decimal,
        stop_price: Decimal,
        stop_limit_price: Decimal,
        list_client_order_id: str,
        limit_client_order_id: str,
        stop_client_order_id: str,
    ) -> OrderList:
        """Binance classic OCO: a LIMIT_MAKER leg at `price` and a STOP_LOSS_LIMIT leg (stop_price,
        stop_limit_price, GTC). When either leg fills (even partly) or triggers, the other expires."""
        ...

    async def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        """Cancel an open order; raises CancelRejected (-2011) when it is unknown or already closed.
        Cancelling one OCO leg cancels the whole list."""
        ...

    async def get_order(self, symbol: str, client_order_id: str) -> Order:
        """Current state of an order by client id; raises NoSuchOrder (-2013) when never accepted."""
        ...

    async def open_orders(self, symbol: str | None = None) -> list[Order]: ...

    async def my_trades(
        self,
        symbol: str,
        *,
        start_time: int | None = None,
        end_time: int | None = None,
        from_id: int | None = None,
        limit: int = 500,
    ) -> list[Fill]:
        """Account fills of a symbol, oldest first (Binance myTrades semantics)."""
        ...

    def subscribe_updates(self, callback: UpdateCallback) -> Callable[[], None]:
        """Register a callback for OrderUpdate / BalanceUpdate; returns the unsubscribe function."""
        ...

    async def close(self) -> None: ...
