"""Fills and market events: the half of the engine that moves money.

Conventions (the module docstring of `roottrading.exchange.sim` is the user-facing summary):
- A resting BUY limit at L fills at L (maker) when a trade prints at <= L, when the ask reaches <= L, or when
  a candle's path passes through L. A SELL limit symmetrically at >= L.
- An order that crosses on arrival fills at once as taker at the current reference price (ask/bid, else
  last trade): a limit buy placed above the market pays the market, not its limit.
- Stop orders trigger on the last trade price (or the mid of a book update). Inside a candle the path is
  continuous, so a triggered stop sees the market *at its stop price*; across a gap (previous close -> open)
  and on discrete ticks it sees the price that crossed it.
- Fees: maker/taker rate times the amount received, charged in the received asset, rounded half-up to the
  symbol's commission precision.
"""

from __future__ import annotations

import heapq
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from roottrading.domain import Fill, OrderStatus, OrderType, Side, TimeInForce
from roottrading.exchange.base import BalanceUpdate, ExchangeUpdate, OrderUpdate
from roottrading.exchange.sim.state import WAITING_TRIGGER, WORKING, ZERO, SimOrder, SymbolBook

if TYPE_CHECKING:
    from collections.abc import Callable

    from roottrading.exchange.sim.config import SimConfig
    from roottrading.exchange.sim.state import Ledger

_heappush = heapq.heappush
_heappop = heapq.heappop
_BUY = Side.BUY
_FILLED = OrderStatus.FILLED
_PARTIAL = OrderStatus.PARTIALLY_FILLED
_STOP_TYPES = (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)
_MARKET = OrderType.MARKET
_GTC, _FOK = TimeInForce.GTC, TimeInForce.FOK


# (trade_id, order_id, client_order_id, symbol, side, price, qty, quote, fee, fee_asset, time, maker); the fake
# Binance server reads these tuples directly (roottrading/exchange/fake_binance), keep the layout.
TradeRecord = tuple[int, int, str, str, Side, Decimal, Decimal, Decimal, Decimal, str, int, bool]


def trade_to_fill(t: TradeRecord) -> Fill:
    return Fill(
        trade_id=str(t[0]),
        order_id=str(t[1]),
        client_order_id=t[2],
        symbol=t[3],
        side=t[4],
        price=t[5],
        quantity=t[6],
        quote_quantity=t[7],
        commission=t[8],
        commission_asset=t[9],
        time=t[10],
        is_maker=t[11],
    )


def fill_to_trade(f: Fill) -> TradeRecord:
    return (
        int(f.trade_id),
        int(f.order_id),
        f.client_order_id,
        f.symbol,
        f.side,
        f.price,
        f.quantity,
        f.quote_quantity,
        f.commission,
        f.commission_asset,
        f.time,
        f.is_maker,
    )


def triggers_up(o: SimOrder) -> bool:
    """True when the order triggers on price >= stop (buy stop-loss, sell take-profit)."""
    return (o.type is OrderType.STOP_LOSS_LIMIT) is (o.side is _BUY)


class MatchingCore:
    """State shared with SimEngine plus everything that executes against the market."""

    config: SimConfig
    ledger: Ledger
    books: dict[str, SymbolBook]
    now: int
    _next_trade_id: int
    _open: dict[int, SimOrder]
    _trades: dict[str, list[TradeRecord]]
    _history_cap: int
    _maker_fee: Decimal
    _taker_fee: Decimal
    _lists: dict[int, list[SimOrder]]
    _listeners: list[Callable[[ExchangeUpdate], object]]
    _touched: set[str]
    _bps_up: Decimal
    _bps_down: Decimal

    # ------------------------------------------------------------------ notifications
    def _emit(self, o: SimOrder, exec_type: str, fill: Fill | None = None) -> None:
        ev = OrderUpdate(
            time=self.now, execution_type=exec_type, order=o.to_order(), fill=fill, order_list_id=o.list_id
        )
        for cb in list(self._listeners):
            cb(ev)

    def _flush_balances(self) -> None:
        if self._touched and self._listeners:
            ev = BalanceUpdate(time=self.now, balances=tuple(self.ledger.balance(a) for a in sorted(self._touched)))
            self._touched.clear()
            for cb in list(self._listeners):
                cb(ev)
        else:
            self._touched.clear()

    # ------------------------------------------------------------------ order end of life
    def _finish(
        self, o: SimOrder, status: OrderStatus, exec_type: str | None = None, book: SymbolBook | None = None
    ) -> None:
        """Close an order (CANCELED / EXPIRED / FILLED): release its share of the lock, fix counters."""
        o.status = status
        o.is_open = False
        o.updated_at = self.now
        del self._open[o.order_id]
        if book is None:
            book = self.books[o.symbol]
        book.open_count -= 1
        if o.stage != WORKING and o.type in _STOP_TYPES:
            book.algo_count -= 1
        if o.in_heap:
            book.dead += 1
        lock = o.lock
        if lock is not None:
            lock.owners -= 1
            amount = lock.amount
            if lock.owners == 0 and amount:
                asset = lock.asset
                ledger = self.ledger
                ledger.locked[asset] -= amount  # inlined Ledger.unlock
                ledger.free[asset] += amount
                lock.amount = ZERO
                if self._listeners:
                    self._touched.add(asset)
            o.lock = None  # a closed order holds nothing; fewer live objects for the garbage collector to scan
        if exec_type is not None and self._listeners:
            self._emit(o, exec_type)

    def _expire_siblings(self, o: SimOrder) -> None:
        """OCO: once a leg fills or triggers, the other leg expires (its lock share passes to this leg)."""
        for leg in self._lists.get(o.list_id, ()):
            if leg is not o and leg.is_open:
                self._finish(leg, OrderStatus.EXPIRED, "EXPIRED")

    # ------------------------------------------------------------------ fills
    def _fill(self, o: SimOrder, book: SymbolBook, qty: Decimal, price: Decimal, maker: bool) -> None:
        quote_asset, base_asset = book.quote_asset, book.base_asset
        ledger = self.ledger
        free, locked = ledger.free, ledger.locked
        quote = price * qty
        rate = self._maker_fee if maker else self._taker_fee
        lock = o.lock
        if o.side is _BUY:
            if lock is not None:
                limit = o.price  # locked orders always have a price
                use = quote if price is limit else limit * qty  # type: ignore[operator]  # (same product)
                amount = lock.amount
                if use > amount:
                    use = amount
                lock.amount = amount - use
                locked[quote_asset] -= use
                free[quote_asset] += use - quote
            else:
                free[quote_asset] -= quote
            fee = (qty * rate).quantize(book.base_fee_exp, ROUND_HALF_UP) if rate else ZERO
            free[base_asset] = free.get(base_asset, ZERO) + qty - fee
            locked.setdefault(base_asset, ZERO)
            fee_asset = base_asset
        else:
            if lock is not None:
                lock.amount -= qty
                locked[base_asset] -= qty
            else:
                free[base_asset] -= qty
            fee = (quote * rate).quantize(book.quote_fee_exp, ROUND_HALF_UP) if rate else ZERO
            free[quote_asset] = free.get(quote_asset, ZERO) + quote - fee
            locked.setdefault(quote_asset, ZERO)
            fee_asset = quote_asset
        if book.budget is not None:
            book.budget -= qty
        self._next_trade_id += 1
        rec = (
            self._next_trade_id,
            o.order_id,
            o.client_order_id,
            o.symbol,
            o.side,
            price,
            qty,
            quote,
            fee,
            fee_asset,
            self.now,
            maker,
        )
        trades = self._trades[o.symbol]
        trades.append(rec)  # a Fill is built only when someone reads it (hot path)
        if len(trades) > self._history_cap:  # forget the oldest tenth at once: amortised O(1)
            del trades[: len(trades) - self.config.history_limit]
        first = not o.executed
        executed = o.executed = o.executed + qty
        o.cum_quote += quote
        o.updated_at = self.now
        listeners = self._listeners
        if listeners:
            self._touched.add(quote_asset)
            self._touched.add(base_asset)
        if first and o.list_id >= 0:
            self._expire_siblings(o)
        if executed >= o.quantity:
            self._finish(o, _FILLED, None, book)
        else:
            o.status = _PARTIAL
        if listeners:
            self._emit(o, "TRADE", trade_to_fill(rec))

    def _available(self, book: SymbolBook, qty: Decimal) -> Decimal:
        """How much of `qty` the liquidity cap allows now, on the LOT_SIZE grid."""
        budget = book.budget
        if budget is None or budget >= qty:
            return qty
        if budget <= 0:
            return ZERO
        return book.rules.round_quantity(budget)

    def _market_price(self, book: SymbolBook, side: Side, ref: Decimal) -> Decimal:
        """Reference price worsened by the configured slippage, rounded to the tick away from the trader."""
        if not self.config.slippage_bps:
            return ref
        if side is _BUY:
            return book.rules.round_price_up(ref * self._bps_up)
        return book.rules.round_price(ref * self._bps_down)

    def _take(self, o: SimOrder, book: SymbolBook, ref: Decimal | None = None) -> None:
        """Execute an arriving (or just-triggered) order as taker as far as the market and liquidity allow."""
        side = o.side
        if ref is None:
            ref = book.ask if side is _BUY else book.bid
            if ref is None:
                ref = book.last
                if ref is None:
                    return
        if o.type is _MARKET:
            price = self._market_price(book, side, ref)
        else:
            limit = o.price
            if (ref > limit) if side is _BUY else (ref < limit):  # type: ignore[operator]
                return
            price = ref
        remaining = o.quantity - o.executed
        budget = book.budget
        qty = remaining if budget is None or budget >= remaining else self._available(book, remaining)
        if o.time_in_force is _FOK and qty < remaining:
            return
        if qty > ZERO:
            self._fill(o, book, qty, price, False)

    def _rest(self, o: SimOrder, book: SymbolBook) -> None:
        o.stage = WORKING
        o.in_heap = True
        if o.side is _BUY:
            _heappush(book.bids, (-o.price, o.order_id, o))  # type: ignore[operator]
        else:
            _heappush(book.asks, (o.price, o.order_id, o))  # type: ignore[misc]  # a limit order has a price

    def _arm(self, o: SimOrder, book: SymbolBook) -> None:
        """Queue a stop order for its trigger."""
        o.stage = WAITING_TRIGGER
        o.in_heap = True
        if triggers_up(o):
            _heappush(book.stops_up, (o.stop_price, o.order_id, o))  # type: ignore[misc]  # a stop order has a stop price
        else:
            _heappush(book.stops_down, (-o.stop_price, o.order_id, o))  # type: ignore[operator]

    def _work_limit(self, o: SimOrder, book: SymbolBook, ref: Decimal | None = None) -> None:
        """A limit order reaching the engine (or a triggered stop): take what crosses, then rest or expire."""
        self._take(o, book, ref)
        if o.is_open:
            if o.time_in_force is _GTC:
                o.stage = WORKING  # inlined _rest
                o.in_heap = True
                if o.side is _BUY:
                    _heappush(book.bids, (-o.price, o.order_id, o))  # type: ignore[operator]
                else:
                    _heappush(book.asks, (o.price, o.order_id, o))  # type: ignore[misc]  # a limit order has a price
            else:
                o.stage = WORKING
                self._finish(o, OrderStatus.EXPIRED, "EXPIRED")

    def _triggered(self, o: SimOrder, book: SymbolBook, market: Decimal | None) -> None:
        book.algo_count -= 1
        o.stage = WORKING
        o.in_heap = False
        o.updated_at = self.now
        if self._listeners:
            self._emit(o, "TRIGGERED")
        if o.list_id >= 0:
            self._expire_siblings(o)
        self._work_limit(o, book, market)

    # ------------------------------------------------------------------ market moves
    def _trade_point(self, book: SymbolBook, price: Decimal, prev: Decimal | None, interpolate: bool) -> None:
        """The market trades at `price` (coming from `prev`): trigger stops, then fill crossed resting orders."""
        book.last = price
        self._trigger_stops(book, price, prev, interpolate)
        self._match_bids(book, price)
        self._match_asks(book, price)

    def _trigger_stops(
        self, book: SymbolBook, price: Decimal, prev: Decimal | None, interpolate: bool, use_book: bool = False
    ) -> None:
        """Trigger every stop crossed by a move to `price`. The triggered limit then meets the market at its
        stop price when the move was continuous (`interpolate`), at `price` otherwise, or at the current
        bid/ask when `use_book`."""
        up = book.stops_up
        while up:
            key, _, o = up[0]
            if o.stage != WAITING_TRIGGER or not o.is_open:
                _heappop(up)
                book.dead -= 1
                continue
            if key > price:
                break
            _heappop(up)
            mkt = key if interpolate and prev is not None and prev < key else price
            self._triggered(o, book, None if use_book else mkt)
        down = book.stops_down
        while down:
            key, _, o = down[0]
            if o.stage != WAITING_TRIGGER or not o.is_open:
                _heappop(down)
                book.dead -= 1
                continue
            stop = -key
            if stop < price:
                break
            _heappop(down)
            mkt = stop if interpolate and prev is not None and prev > stop else price
            self._triggered(o, book, None if use_book else mkt)

    def _match_bids(self, book: SymbolBook, at: Decimal) -> None:
        """Fill resting BUY limits priced >= `at` (best price first, then time)."""
        heap = book.bids
        back = []
        while heap:
            entry = heap[0]
            o = entry[2]
            if not o.is_open:
                _heappop(heap)
                book.dead -= 1
                continue
            if -entry[0] < at:
                break
            remaining = o.quantity - o.executed
            budget = book.budget
            qty = remaining if budget is None or budget >= remaining else self._available(book, remaining)
            if qty <= ZERO:
                break
            _heappop(heap)
            self._fill(o, book, qty, o.price, True)  # type: ignore[arg-type]
            if o.is_open:
                back.append(entry)
            else:
                book.dead -= 1  # the entry just left the heap
        for entry in back:
            _heappush(heap, entry)

    def _match_asks(self, book: SymbolBook, at: Decimal) -> None:
        """Fill resting SELL limits priced <= `at`."""
        heap = book.asks
        back = []
        while heap:
            entry = heap[0]
            o = entry[2]
            if not o.is_open:
                _heappop(heap)
                book.dead -= 1
                continue
            if entry[0] > at:
                break
            remaining = o.quantity - o.executed
            budget = book.budget
            qty = remaining if budget is None or budget >= remaining else self._available(book, remaining)
            if qty <= ZERO:
                break
            _heappop(heap)
            self._fill(o, book, qty, o.price, True)  # type: ignore[arg-type]
            if o.is_open:
                back.append(entry)
            else:
                book.dead -= 1
        for entry in back:
            _heappush(heap, entry)

    def _compact(self, book: SymbolBook) -> None:
        """Drop finished orders from the heaps once they outnumber the live ones (keeps heaps small)."""
        for name in ("bids", "asks", "stops_up", "stops_down"):
            heap = getattr(book, name)
            live = [e for e in heap if e[2].is_open]
            for e in heap:
                if not e[2].is_open:
                    e[2].in_heap = False
            heapq.heapify(live)
            setattr(book, name, live)
        book.dead = 0
