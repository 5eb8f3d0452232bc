"""SimExchange: the async Exchange port over a SimEngine (paper trading, demo mode, fake Binance server).

Why a thin adapter: the engine stays synchronous and fast for the backtester; services that expect the
async port get the same semantics. With a Clock, every call first moves the engine to `clock.now_ms()`, so
latency and timestamps follow the service's clock (SimClock in tests, LiveClock in paper trading).
Async callbacks are scheduled as tasks on the running loop; sync callbacks run inline.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from decimal import Decimal

import structlog

from roottrading.clock import Clock
from roottrading.domain import Balance, Candle, Fill, Order, OrderType, Side, Tick, TimeInForce
from roottrading.exchange.base import ExchangeUpdate, OrderList, UpdateCallback
from roottrading.exchange.errors import InvalidSymbol
from roottrading.exchange.filters import SymbolRules
from roottrading.exchange.sim.engine import SimEngine

log = structlog.get_logger(__name__)


class SimExchange:
    """Implements roottrading.exchange.base.Exchange on top of `engine`."""

    def __init__(self, engine: SimEngine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock = clock
        self._tasks: set[asyncio.Task[None]] = set()

    def _sync_time(self) -> None:
        if self.clock is not None:
            now = self.clock.now_ms()
            if now > self.engine.now:
                self.engine.advance_to(now)

    async def exchange_info(self) -> dict[str, SymbolRules]:
        return dict(self.engine.rules)

    async def symbol_rules(self, symbol: str) -> SymbolRules:
        rules = self.engine.rules.get(symbol)
        if rules is None:
            raise InvalidSymbol()
        return rules

    async def price_at(self, symbol: str, time_ms: int) -> Decimal | None:
        """The symbol's price now (its last trade, else the book's mid), or None when the simulator has no
        market for it: the trader values a third-asset fee (BNB) with it as it applies the fill, i.e. at
        the fill's time (`time_ms` is that time; the simulator keeps no history to look it up later)."""
        book = self.engine.books.get(symbol)
        if book is None:
            return None
        if book.last is not None:
            return book.last
        return (book.bid + book.ask) / 2 if book.bid is not None and book.ask is not None else None

    async def balances(self) -> dict[str, Balance]:
        self._sync_time()
        return self.engine.balances()

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
        self._sync_time()
        return self.engine.place_order(
            symbol, side, type, client_order_id, quantity, quote_quantity, price, stop_price, time_in_force
        )

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
        self._sync_time()
        return self.engine.place_oco(
            symbol,
            side,
            quantity,
            price,
            stop_price,
            stop_limit_price,
            list_client_order_id,
            limit_client_order_id,
            stop_client_order_id,
        )

    async def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        self._sync_time()
        return self.engine.cancel_order(symbol, client_order_id)

    async def get_order(self, symbol: str, client_order_id: str) -> Order:
        self._sync_time()
        return self.engine.get_order(symbol, client_order_id)

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        self._sync_time()
        return self.engine.open_orders(symbol)

    async def my_trades(
        self,
        symbol: str,
        *,
        start_time: int | None = None,
        end_time: int | None = None,
        from_id: int | None = None,
        limit: int = 500,
    ) -> list[Fill]:
        return self.engine.my_trades(symbol, start_time, end_time, from_id, limit)

    def subscribe_updates(self, callback: UpdateCallback) -> Callable[[], None]:
        def relay(update: ExchangeUpdate) -> None:
            result = callback(update)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._task_done)

        return self.engine.subscribe(relay)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("exchange update callback failed", error=repr(task.exception()))

    # market data (paper trading feeds live market data here)
    async def on_tick(self, tick: Tick) -> None:
        self.engine.on_tick(tick)

    async def on_candle(self, candle: Candle) -> None:
        self.engine.on_candle(candle)

    async def close(self) -> None:
        """Wait for callbacks still running, so no update is lost at shutdown."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
