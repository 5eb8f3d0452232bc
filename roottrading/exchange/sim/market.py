"""Market-data entry points of SimEngine (trades, book updates, ticks, candles).

Why a separate mixin: engine.py holds the order API; this is the other half of the public surface, the events
that move the market and fill resting orders (see the package docstring for the intra-candle path).
"""

from __future__ import annotations

from decimal import Decimal

from roottrading.domain import Candle, Tick
from roottrading.domain.money import to_decimal
from roottrading.exchange.errors import InvalidSymbol
from roottrading.exchange.sim.matching import MatchingCore
from roottrading.exchange.sim.state import SymbolBook


def candle_path(candle: Candle) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """The intra-bar path of a candle: O->L->H->C when close >= open (bullish), else O->H->L->C.

    The one implementation of the convention: the engine walks it in `on_candle`, and the trader walks its
    stops along it (roottrading.services.trader) so that the exit it decides on is the one this engine fills."""
    o, h, lo, c = to_decimal(candle.open), to_decimal(candle.high), to_decimal(candle.low), to_decimal(candle.close)
    return (o, lo, h, c) if c >= o else (o, h, lo, c)


class MarketFeed(MatchingCore):
    """Feeds public market events into the engine (SimEngine derives from it)."""

    def advance_to(self, time: int) -> None:  # implemented by SimEngine
        raise NotImplementedError

    def on_trade(self, symbol: str, time: int, price: Decimal, quantity: Decimal | None = None) -> None:
        """One public trade. With a volume cap, `quantity * cap` is what the account may trade on it."""
        book = self._book_at(symbol, time)
        book.bid = book.ask = None
        cap = self.config.volume_cap
        book.budget = quantity * cap if cap is not None and quantity is not None else None
        self._trade_point(book, price, book.last, interpolate=False)
        self._flush_balances()

    def on_book(
        self,
        symbol: str,
        time: int,
        bid: Decimal,
        ask: Decimal,
        bid_qty: Decimal | None = None,
        ask_qty: Decimal | None = None,
    ) -> None:
        """Best bid/ask update. Resting buys fill when ask <= their price, sells when bid >= it; stops
        trigger on the mid price. With a volume cap and sizes, each side may take `size * cap`."""
        book = self._book_at(symbol, time)
        book.bid, book.ask = bid, ask
        cap = self.config.volume_cap
        mid = (bid + ask) / 2
        book.budget = None
        self._trigger_stops(book, mid, book.last, interpolate=False, use_book=True)
        book.budget = ask_qty * cap if cap is not None and ask_qty is not None else None
        self._match_bids(book, ask)
        book.budget = bid_qty * cap if cap is not None and bid_qty is not None else None
        self._match_asks(book, bid)
        book.budget = None
        self._flush_balances()

    def on_tick(self, tick: Tick) -> None:
        """A domain Tick: a book update when it carries bid and ask, else a trade."""
        if tick.bid is not None and tick.ask is not None:
            self.on_book(tick.symbol, tick.time, to_decimal(tick.bid), to_decimal(tick.ask))
        else:
            qty = to_decimal(tick.quantity) if tick.quantity else None
            self.on_trade(tick.symbol, tick.time, to_decimal(tick.price), qty)

    def on_candle(self, candle: Candle) -> None:
        """Walk the candle's intra-bar path (see the package docstring): O->L->H->C when close >= open,
        else O->H->L->C. Orders in flight that arrive by open_time see the whole path; the others arrive
        after it (at close_time)."""
        book = self._book_at(candle.symbol, candle.open_time)
        book.bid = book.ask = None
        cap = self.config.volume_cap
        book.budget = to_decimal(candle.volume) * cap if cap is not None else None
        path = candle_path(candle)
        prev = book.last
        for i, p in enumerate(path):
            if i and p == prev:
                continue
            self._trade_point(book, p, prev, interpolate=i > 0)
            prev = p
        self.advance_to(candle.close_time)

    def _book_at(self, symbol: str, time: int) -> SymbolBook:
        book = self.books.get(symbol)
        if book is None:
            raise InvalidSymbol()
        self.advance_to(time)
        return book
