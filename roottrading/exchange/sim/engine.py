"""SimEngine: the synchronous simulated exchange (orders, balances, market events, queries).

Why synchronous: the backtester drives millions of events; an async hop per order would dominate the cost.
`SimExchange` (adapter.py) wraps it in the async Exchange port for paper trading and the fake Binance server.
Determinism: no wall clock, no randomness. Time only moves through `advance_to`, the `time=` argument of
the order calls, and the timestamps of the market events fed in.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal

from roottrading.domain import Balance, Fill, Order, OrderStatus, OrderType, Side, TimeInForce
from roottrading.domain.money import to_decimal
from roottrading.exchange.base import ExchangeUpdate, OrderList
from roottrading.exchange.errors import (
    CancelRejected,
    DuplicateOrder,
    FilterFailure,
    InsufficientBalance,
    InvalidMessage,
    InvalidOrderType,
    InvalidSide,
    InvalidSymbol,
    InvalidTimeInForce,
    MandatoryParamMissing,
    NewOrderRejected,
    NoMarketPrice,
    NoSuchOrder,
    ParamNotRequired,
    WouldMatchAndTake,
    WouldTriggerImmediately,
)
from roottrading.exchange.filters import SymbolRules
from roottrading.exchange.sim.config import SimConfig
from roottrading.exchange.sim.market import MarketFeed
from roottrading.exchange.sim.matching import TradeRecord, trade_to_fill, triggers_up
from roottrading.exchange.sim.state import IN_FLIGHT, WORKING, ZERO, Ledger, Lock, SimOrder, SymbolBook

_STOP_TYPES = (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)
_LIMIT_TYPES = (OrderType.LIMIT, OrderType.LIMIT_MAKER, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)
_COMPACT_MIN = 256
_BUY = Side.BUY
_LIMIT, _MARKET = OrderType.LIMIT, OrderType.MARKET
_GTC = TimeInForce.GTC


def _enum(cls: type, value: object, err: type) -> object:
    if isinstance(value, cls):
        return value
    try:
        return cls(value)
    except ValueError:
        raise err() from None


class SimEngine(MarketFeed):
    """A deterministic spot exchange for one account. See the package docstring for the execution model."""

    def __init__(
        self,
        rules: Mapping[str, SymbolRules] | Iterable[SymbolRules],
        config: SimConfig | None = None,
        balances: Mapping[str, Decimal | str | int] | None = None,
        start_time: int = 0,
    ) -> None:
        rule_list = list(rules.values()) if isinstance(rules, Mapping) else list(rules)
        self.config = config or SimConfig()
        self.rules: dict[str, SymbolRules] = {r.symbol: r for r in rule_list}
        self.books: dict[str, SymbolBook] = {r.symbol: SymbolBook(r) for r in rule_list}
        self.ledger = Ledger()
        self.now = start_time
        self._next_order_id = 0
        self._next_trade_id = 0
        self._next_list_id = 0
        self._orders: dict[int, SimOrder] = {}
        self._by_client: dict[tuple[str, str], SimOrder] = {}
        self._open: dict[int, SimOrder] = {}
        self._lists: dict[int, list[SimOrder]] = {}
        self._list_client_ids: dict[int, str] = {}
        self._trades: dict[str, list[TradeRecord]] = {s: [] for s in self.books}
        self._maker_fee, self._taker_fee = self.config.maker_fee, self.config.taker_fee
        self._pending: list[tuple[int, int, SimOrder]] = []
        self._listeners: list[Callable[[ExchangeUpdate], object]] = []
        self._touched: set[str] = set()
        bps = self.config.slippage_bps / Decimal(10_000)
        self._bps_up, self._bps_down = 1 + bps, 1 - bps
        self._slippage = bool(self.config.slippage_bps)  # the config is frozen: read once (hot path)
        self._latency = self.config.latency_ms
        self._history_cap = self.config.history_limit + max(1, self.config.history_limit // 10)
        for asset, amount in (balances or {}).items():
            self.ledger.deposit(asset, to_decimal(amount))

    def list_symbol(self, rules: SymbolRules) -> None:
        """Start trading a symbol the engine was not built with (a pair that joined the universe in demo
        mode); a symbol already listed keeps its rules and book."""
        if rules.symbol in self.books:
            return
        self.rules[rules.symbol] = rules
        self.books[rules.symbol] = SymbolBook(rules)
        self._trades[rules.symbol] = []

    # ------------------------------------------------------------------ account
    def deposit(self, asset: str, amount: Decimal) -> None:
        """Credit an asset (initial capital, demo top-up)."""
        self.ledger.deposit(asset, amount)
        if self._listeners:
            self._touched.add(asset)
            self._flush_balances()

    def balances(self) -> dict[str, Balance]:
        return {a: self.ledger.balance(a) for a in sorted(self.ledger.free)}

    def balance(self, asset: str) -> Balance:
        return self.ledger.balance(asset)

    def subscribe(self, callback: Callable[[ExchangeUpdate], object]) -> Callable[[], None]:
        """Call `callback(OrderUpdate | BalanceUpdate)` synchronously on every change; returns unsubscribe."""
        self._listeners.append(callback)

        def unsubscribe() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return unsubscribe

    # ------------------------------------------------------------------ time
    def advance_to(self, time: int) -> None:
        """Move simulated time forward (never back) and let in-flight orders reach the engine."""
        pending = self._pending
        while pending and pending[0][0] <= time:
            at, _, o = heapq.heappop(pending)
            if at > self.now:
                self.now = at
            if o.is_open and o.stage == IN_FLIGHT:
                self._activate(o, self.books[o.symbol])
        if time > self.now:
            self.now = time
        self._flush_balances()

    # ------------------------------------------------------------------ orders
    def place_order(
        self,
        symbol: str,
        side: Side,
        type: OrderType,
        client_order_id: str,
        quantity: Decimal | None = None,
        quote_quantity: Decimal | None = None,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
        time_in_force: TimeInForce = TimeInForce.GTC,
        time: int | None = None,
    ) -> Order:
        """Validate, reserve funds and submit one order; returns its state after acceptance.

        Raises the Binance error the real exchange would give (-1121, -1102, -1013 filter failures, -2010).
        Hot path (benchmarks/execution.py): helpers are inlined here, keep the order of the checks."""
        if time is not None and time > self.now:
            self.advance_to(time)
        book = self.books.get(symbol)
        if book is None:
            raise InvalidSymbol()
        if side.__class__ is not Side:  # enum members are never subclassed: same as isinstance
            side = _enum(Side, side, InvalidSide)  # type: ignore[assignment]
        if type.__class__ is not OrderType:
            type = _enum(OrderType, type, InvalidOrderType)  # type: ignore[assignment]
        if time_in_force.__class__ is not TimeInForce:
            time_in_force = _enum(TimeInForce, time_in_force, InvalidTimeInForce)  # type: ignore[assignment]
        if not client_order_id:
            raise MandatoryParamMissing.for_param("newClientOrderId")
        key = (symbol, client_order_id)
        prev = self._by_client.get(key)
        if prev is not None and prev.is_open:
            raise DuplicateOrder()
        max_orders = book.rules.max_num_orders
        if max_orders is not None and book.open_count >= max_orders:
            raise FilterFailure("MAX_NUM_ORDERS")
        if type is _MARKET:
            o = self._new_market(book, side, client_order_id, quantity, quote_quantity, price, stop_price)
        else:
            o = self._new_limit(
                book, side, type, client_order_id, quantity, quote_quantity, price, stop_price, time_in_force
            )
        oid = o.order_id  # register (see _register)
        self._orders[oid] = o
        if len(self._orders) > self._history_cap:
            self._forget_closed_orders()
        self._by_client[key] = o
        self._open[oid] = o
        book.open_count += 1
        if type in _STOP_TYPES:
            book.algo_count += 1
        if self._listeners:
            self._emit(o, "NEW")
        if self._latency:
            self._submit(o, book)
        elif type is _LIMIT:  # the common case, without the _activate dispatch
            self._work_limit(o, book)
            if book.dead > _COMPACT_MIN and book.dead > len(self._open):
                self._compact(book)
        else:
            self._activate(o, book)
        if self._touched:
            self._flush_balances()
        return o.to_order()

    def _new_market(
        self,
        book: SymbolBook,
        side: Side,
        cid: str,
        quantity: Decimal | None,
        quote_quantity: Decimal | None,
        price: Decimal | None,
        stop_price: Decimal | None,
    ) -> SimOrder:
        if price is not None:
            raise ParamNotRequired.for_param("price")
        if stop_price is not None:
            raise ParamNotRequired.for_param("stopPrice")
        if quantity is None and quote_quantity is None:
            raise MandatoryParamMissing("Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!")
        if quantity is not None and quote_quantity is not None:
            raise ParamNotRequired.for_param("quoteOrderQty")
        ref = book.ask if side is _BUY else book.bid
        if ref is None:
            ref = book.last
            if ref is None:
                raise NoMarketPrice()
        px = self._market_price(book, side, ref) if self._slippage else ref
        if quote_quantity is not None:
            rules = book.rules
            if not rules.quote_order_qty_market_allowed:
                raise NewOrderRejected("Quote order qty market orders are not support for this symbol.")
            if quote_quantity <= 0:
                raise InvalidMessage("Invalid quoteOrderQty.")
            quantity = rules.round_quantity(quote_quantity / px, market=True)
        assert quantity is not None
        book.fast.check(side, _MARKET, quantity, last_price=ref)
        if side is _BUY:
            if quantity * px > self.ledger.free.get(book.quote_asset, ZERO):
                raise InsufficientBalance()
        elif quantity > self.ledger.free.get(book.base_asset, ZERO):
            raise InsufficientBalance()
        self._next_order_id += 1
        return SimOrder(
            self._next_order_id,
            cid,
            book.rules.symbol,
            side,
            _MARKET,
            quantity,
            None,
            None,
            _GTC,
            self.now,
            quote_quantity,
        )

    def _new_limit(
        self,
        book: SymbolBook,
        side: Side,
        type: OrderType,
        cid: str,
        quantity: Decimal | None,
        quote_quantity: Decimal | None,
        price: Decimal | None,
        stop_price: Decimal | None,
        tif: TimeInForce,
    ) -> SimOrder:
        if quantity is None:
            raise MandatoryParamMissing.for_param("quantity")
        if price is None:
            raise MandatoryParamMissing.for_param("price")
        if quote_quantity is not None:
            raise ParamNotRequired.for_param("quoteOrderQty")
        is_stop = type in _STOP_TYPES
        if is_stop and stop_price is None:
            raise MandatoryParamMissing.for_param("stopPrice")
        if not is_stop and stop_price is not None:
            raise ParamNotRequired.for_param("stopPrice")
        book.fast.check(side, type, quantity, price, stop_price, book.last)
        if type is OrderType.LIMIT_MAKER:
            tif = _GTC
            ref = book.taker_price(side)
            if ref is not None and ((ref <= price) if side is _BUY else (ref >= price)):
                raise WouldMatchAndTake()
        self._next_order_id += 1
        o = SimOrder(
            self._next_order_id, cid, book.rules.symbol, side, type, quantity, price, stop_price, tif, self.now
        )
        if is_stop:
            rules = book.rules
            if rules.max_num_algo_orders is not None and book.algo_count >= rules.max_num_algo_orders:
                raise FilterFailure("MAX_NUM_ALGO_ORDERS")
            last = book.last
            if last is not None and ((last >= stop_price) if triggers_up(o) else (last <= stop_price)):  # type: ignore[operator]
                raise WouldTriggerImmediately()
        # reserve the funds (inlined _lock_for): BUY price * quantity of quote, SELL quantity of base
        if side is _BUY:
            asset, amount = book.quote_asset, price * quantity
        else:
            asset, amount = book.base_asset, quantity
        ledger = self.ledger
        free = ledger.free.get(asset, ZERO)
        if free < amount:
            raise InsufficientBalance()
        ledger.free[asset] = free - amount
        locked = ledger.locked
        locked[asset] = locked.get(asset, ZERO) + amount
        if self._listeners:
            self._touched.add(asset)
        o.lock = Lock(asset, amount)
        return o

    def _lock_for(self, o: SimOrder, rules: SymbolRules, buy_price: Decimal | None, owners: int = 1) -> Lock:
        if o.side is Side.BUY:
            lock = Lock(rules.quote_asset, buy_price * o.quantity, owners)  # type: ignore[operator]
        else:
            lock = Lock(rules.base_asset, o.quantity, owners)
        self.ledger.lock(lock.asset, lock.amount)
        if self._listeners:
            self._touched.add(lock.asset)
        o.lock = lock
        return lock

    def _forget_closed_orders(self) -> None:
        """Drop the oldest closed orders down to `history_limit` (open orders always stay)."""
        excess = len(self._orders) - self.config.history_limit
        for oid in [oid for oid, o in self._orders.items() if oid not in self._open][:excess]:
            o = self._orders.pop(oid)
            if self._by_client.get((o.symbol, o.client_order_id)) is o:
                del self._by_client[(o.symbol, o.client_order_id)]

    def _register(self, o: SimOrder, book: SymbolBook) -> None:
        self._orders[o.order_id] = o
        if len(self._orders) > self._history_cap:
            self._forget_closed_orders()
        self._by_client[(o.symbol, o.client_order_id)] = o
        self._open[o.order_id] = o
        book.open_count += 1
        if o.type in _STOP_TYPES:
            book.algo_count += 1

    def _submit(self, o: SimOrder, book: SymbolBook) -> None:
        latency = self._latency
        if latency:
            o.activate_at = self.now + latency
            heapq.heappush(self._pending, (o.activate_at, o.order_id, o))
        else:
            self._activate(o, book)

    def _activate(self, o: SimOrder, book: SymbolBook) -> None:
        """The order reaches the matching engine."""
        t = o.type
        if t is _LIMIT:
            self._work_limit(o, book)
        elif t is _MARKET:
            self._activate_market(o, book)
        elif t in _STOP_TYPES:
            last = book.last
            if last is not None and ((last >= o.stop_price) if triggers_up(o) else (last <= o.stop_price)):  # type: ignore[operator]
                self._triggered(o, book, None)
            else:
                self._arm(o, book)
        elif t is OrderType.LIMIT_MAKER:
            ref = book.taker_price(o.side)
            if ref is not None and ((ref <= o.price) if o.side is Side.BUY else (ref >= o.price)):  # type: ignore[operator]
                o.stage = WORKING
                self._finish(o, OrderStatus.EXPIRED, "EXPIRED")  # crossed while in flight
            else:
                self._rest(o, book)
        else:
            self._work_limit(o, book)
        if book.dead > _COMPACT_MIN and book.dead > len(self._open):
            self._compact(book)

    def _activate_market(self, o: SimOrder, book: SymbolBook) -> None:
        o.stage = WORKING
        side = o.side
        ref = book.ask if side is _BUY else book.bid
        if ref is None:
            ref = book.last
            if ref is None:
                self._finish(o, OrderStatus.EXPIRED, "EXPIRED")
                return
        px = self._market_price(book, side, ref) if self._slippage else ref
        if o.quote_order_qty is not None and o.activate_at != o.created_at:  # price moved while in flight
            o.quantity = book.rules.round_quantity(o.quote_order_qty / px, market=True)
        if side is _BUY:
            affordable = o.quantity * px <= self.ledger.free.get(book.quote_asset, ZERO)
        else:
            affordable = o.quantity <= self.ledger.free.get(book.base_asset, ZERO)
        if affordable and o.quantity > ZERO:
            self._take(o, book, ref)
        if o.is_open:  # liquidity cap left a remainder, or funds vanished in flight
            self._finish(o, OrderStatus.EXPIRED, "EXPIRED")

    def place_oco(
        self,
        symbol: str,
        side: Side,
        quantity: Decimal,
        price: Decimal,
        stop_price: Decimal,
        stop_limit_price: Decimal,
        list_client_order_id: str,
        limit_client_order_id: str,
        stop_client_order_id: str,
        stop_limit_time_in_force: TimeInForce = TimeInForce.GTC,
        time: int | None = None,
    ) -> OrderList:
        """Binance classic OCO: LIMIT_MAKER at `price` + STOP_LOSS_LIMIT (stop_price -> stop_limit_price).

        SELL needs price > last > stop_price, BUY price < last < stop_price. One lock covers both legs
        (SELL: quantity of base; BUY: quantity * max(price, stop_limit_price) of quote)."""
        if time is not None and time > self.now:
            self.advance_to(time)
        book = self.books.get(symbol)
        if book is None:
            raise InvalidSymbol()
        side = _enum(Side, side, InvalidSide)  # type: ignore[assignment]
        rules = book.rules
        if not rules.oco_allowed:
            raise NewOrderRejected("OCO orders are not supported for this symbol.")
        for cid in (limit_client_order_id, stop_client_order_id):
            prev = self._by_client.get((symbol, cid))
            if prev is not None and prev.is_open:
                raise DuplicateOrder()
        if limit_client_order_id == stop_client_order_id:
            raise DuplicateOrder()
        rules.check(side, OrderType.LIMIT_MAKER, quantity, price, None, book.last)
        rules.check(side, OrderType.STOP_LOSS_LIMIT, quantity, stop_limit_price, stop_price, book.last)
        last = book.last
        if last is not None:
            ok = price > last > stop_price if side is Side.SELL else price < last < stop_price
            if not ok:
                raise NewOrderRejected("The relationship of the prices for the orders is not correct.")
        if rules.max_num_orders is not None and book.open_count + 2 > rules.max_num_orders:
            raise FilterFailure("MAX_NUM_ORDERS")
        self._next_list_id += 1
        list_id = self._next_list_id
        legs = []
        for cid, typ, px, sp in (
            (stop_client_order_id, OrderType.STOP_LOSS_LIMIT, stop_limit_price, stop_price),
            (limit_client_order_id, OrderType.LIMIT_MAKER, price, None),
        ):
            self._next_order_id += 1
            tif = stop_limit_time_in_force if sp is not None else TimeInForce.GTC
            o = SimOrder(self._next_order_id, cid, symbol, side, typ, quantity, px, sp, tif, self.now)
            o.list_id = list_id
            legs.append(o)
        self._lock_for(legs[0], rules, max(price, stop_limit_price) if side is Side.BUY else None, owners=2)
        legs[1].lock = legs[0].lock
        self._lists[list_id] = legs
        self._list_client_ids[list_id] = list_client_order_id
        for o in legs:
            self._register(o, book)
            if self._listeners:
                self._emit(o, "NEW")
        for o in legs:
            if o.is_open:
                self._submit(o, book)
        self._flush_balances()
        return self.order_list(list_id)

    def order_list(self, order_list_id: int) -> OrderList:
        legs = self._lists.get(order_list_id)
        if legs is None:
            raise NoSuchOrder("Order list does not exist.")
        return OrderList(
            order_list_id=order_list_id,
            list_client_order_id=self._list_client_ids[order_list_id],
            symbol=legs[0].symbol,
            list_status="EXEC_STARTED" if any(o.is_open for o in legs) else "ALL_DONE",
            orders=[o.to_order() for o in legs],
            transaction_time=legs[0].created_at,
        )

    def cancel_order(self, symbol: str, client_order_id: str, time: int | None = None) -> Order:
        """Cancel an open order (an OCO leg cancels its whole list); -2011 when unknown or already closed."""
        if time is not None and time > self.now:
            self.advance_to(time)
        if symbol not in self.books:
            raise InvalidSymbol()
        o = self._by_client.get((symbol, client_order_id))
        if o is None or not o.is_open:
            raise CancelRejected()
        if o.list_id >= 0:
            for leg in self._lists[o.list_id]:
                if leg.is_open:
                    self._finish(leg, OrderStatus.CANCELED, "CANCELED")
        else:
            self._finish(o, OrderStatus.CANCELED, "CANCELED")
        book = self.books[symbol]
        if book.dead > _COMPACT_MIN and book.dead > len(self._open):
            self._compact(book)
        self._flush_balances()
        return o.to_order()

    # ------------------------------------------------------------------ queries
    def get_order(self, symbol: str, client_order_id: str) -> Order:
        o = self._by_client.get((symbol, client_order_id))
        if o is None:
            if symbol not in self.books:
                raise InvalidSymbol()
            raise NoSuchOrder()
        return o.to_order()

    def order_list_id(self, symbol: str, client_order_id: str) -> int:
        """The OCO list id of an order (-1 when it is not part of a list)."""
        o = self._by_client.get((symbol, client_order_id))
        if o is None:
            raise NoSuchOrder()
        return o.list_id

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        if symbol is not None and symbol not in self.books:
            raise InvalidSymbol()
        return [o.to_order() for o in self._open.values() if symbol is None or o.symbol == symbol]

    def all_orders(self, symbol: str) -> list[Order]:
        return [o.to_order() for o in self._orders.values() if o.symbol == symbol]

    def my_trades(
        self,
        symbol: str,
        start_time: int | None = None,
        end_time: int | None = None,
        from_id: int | None = None,
        limit: int = 500,
    ) -> list[Fill]:
        trades = self._trades.get(symbol)
        if trades is None:
            raise InvalidSymbol()
        # ids grow with every trade (one counter), so a from_id skips the older ones by bisection: a scan of the
        # whole history per call made the fast backtest engine's per-fill reads quadratic
        lo = bisect.bisect_left(trades, from_id, key=lambda t: t[0]) if from_id is not None else 0
        out = [
            t
            for t in (trades[lo:] if lo else trades)
            if (start_time is None or t[10] >= start_time)
            and (end_time is None or t[10] <= end_time)
            and (from_id is None or t[0] >= from_id)
        ]
        out = out[:limit] if from_id is not None or start_time is not None else out[-limit:]
        return [trade_to_fill(t) for t in out]

    def last_price(self, symbol: str) -> Decimal | None:
        book = self.books.get(symbol)
        if book is None:
            raise InvalidSymbol()
        return book.last
