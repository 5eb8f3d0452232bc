"""Binance Spot's ticker statistics (/api/v3/ticker/24hr, /api/v3/ticker/bookTicker) over the simulated market.

Why: off-the-shelf clients read tickers from these (ccxt's `fetch_ticker`/`fetch_tickers` from 24hr,
`fetch_bids_asks` from bookTicker). The numbers come from the same state REST klines, depth and the streams
are built from, so a client sees one market:
- the 24h window is the closed candles opened within the last 24 h of simulated time, plus the last price
  (the in-progress candle's replayed price, which may already lie outside the closed candles' range);
- bid/ask are the book the @bookTicker stream and /depth show (1.0 at the top level, like them);
- `count` is the candles' trade count (the klines' "number of trades"); `lastId` is the last @trade id the
  replay emitted and `firstId` = lastId - count + 1 (floored at 0), Binance's identity count = last - first + 1.
Parameters as Binance: `symbol` or `symbols` (a JSON array), `type` FULL (default) or MINI.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from roottrading.exchange.errors import BinanceError, IllegalParameter, InvalidSymbol
from roottrading.exchange.fake_binance.market import Market, fmt

if TYPE_CHECKING:
    from roottrading.exchange.fake_binance.app import FakeBinanceState

DAY_MS = 86_400_000


class BadParameterCombination(BinanceError):
    code = -1101
    default_msg = "Combination of optional parameters invalid."


class InvalidTickerType(BinanceError):
    code = -1139
    default_msg = "Invalid ticker type."


def _symbols_weight(per_symbol: int, cap: int, all_weight: int) -> Callable[[dict[str, str]], int]:
    """Binance's ticker weights: by the number of symbols asked for; all symbols when none is given."""

    def weight(q: dict[str, str]) -> int:
        if "symbol" in q:
            return per_symbol
        if "symbols" in q:
            try:
                n = len(json.loads(q["symbols"]))
            except (ValueError, TypeError):
                return per_symbol
            return per_symbol if n <= 20 else cap if n <= 100 else all_weight
        return all_weight

    return weight


ROUTE_WEIGHTS = {
    "/api/v3/ticker/24hr": _symbols_weight(2, 40, 80),
    "/api/v3/ticker/bookTicker": _symbols_weight(2, 4, 4),
}


def selected_symbols(request: Request, market: Market) -> tuple[list[str], bool]:
    """(symbols, single): the symbols a ticker request names, and whether it used `symbol` (one object
    in the answer) rather than `symbols` or nothing (a list)."""
    q = request.query_params
    if "symbol" in q and "symbols" in q:
        raise BadParameterCombination()
    if "symbol" in q:
        wanted, single = [q["symbol"].upper()], True
    elif "symbols" in q:
        try:
            raw = json.loads(q["symbols"])
        except ValueError:
            raise IllegalParameter("Illegal characters found in parameter 'symbols'.") from None
        if not isinstance(raw, list) or not raw or not all(isinstance(s, str) for s in raw):
            raise IllegalParameter("Illegal characters found in parameter 'symbols'.")
        wanted, single = [s.upper() for s in raw], False
    else:
        wanted, single = list(market.series), False
    if any(s not in market.series for s in wanted):
        raise InvalidSymbol()
    return wanted, single


def _d(x: float) -> Decimal:
    return Decimal(repr(x))


def ticker_24hr(market: Market, symbol: str, full: bool = True) -> dict[str, Any]:
    """One 24hr ticker object, FULL or MINI, over the rolling 24 h before the simulated now."""
    now = market.now_ms
    closed = market.closed_candles(symbol)
    window = [c for c in closed if c.open_time >= now - DAY_MS]
    last = _d(market.last_price[symbol])
    before = closed[-len(window) - 1] if len(closed) > len(window) else None
    open_ = _d(window[0].open) if window else last
    high = max([_d(c.high) for c in window] + [last])
    low = min([_d(c.low) for c in window] + [last])
    volume = sum((_d(c.volume) for c in window), Decimal(0))
    quote_volume = sum((_d(c.quote_volume) for c in window), Decimal(0))
    count = sum(c.trades for c in window)
    last_id = market.last_trade_id(symbol) if count else -1
    first_id = max(0, last_id - count + 1) if count else -1
    stats = {
        "openPrice": f"{open_:.8f}",
        "highPrice": f"{high:.8f}",
        "lowPrice": f"{low:.8f}",
        "lastPrice": f"{last:.8f}",
        "volume": f"{volume:.8f}",
        "quoteVolume": f"{quote_volume:.8f}",
        "openTime": window[0].open_time if window else now - DAY_MS,
        "closeTime": now,
        "firstId": first_id,
        "lastId": last_id,
        "count": count,
    }
    if not full:  # MINI: Binance's key order
        return {"symbol": symbol, **stats}
    change = last - open_
    bid, ask = market.book[symbol]
    return {
        "symbol": symbol,
        "priceChange": f"{change:.8f}",
        "priceChangePercent": f"{(change / open_ * 100 if open_ else Decimal(0)):.3f}",
        "weightedAvgPrice": f"{(quote_volume / volume if volume else Decimal(0)):.8f}",
        "prevClosePrice": f"{(_d(before.close) if before else open_):.8f}",
        "lastPrice": stats.pop("lastPrice"),
        "lastQty": fmt(market.last_qty[symbol]),
        "bidPrice": fmt(bid),
        "bidQty": fmt(1.0),
        "askPrice": fmt(ask),
        "askQty": fmt(1.0),
        **stats,
    }


def book_ticker(market: Market, symbol: str) -> dict[str, str]:
    bid, ask = market.book[symbol]
    return {"symbol": symbol, "bidPrice": fmt(bid), "bidQty": fmt(1.0), "askPrice": fmt(ask), "askQty": fmt(1.0)}


def ticker_routes(state: FakeBinanceState) -> list[Route]:
    """The routes; registers their request weights."""
    market = state.market
    state.limiter.route_weights.update(ROUTE_WEIGHTS)

    async def ticker_24h(request: Request) -> Response:
        try:
            symbols, single = selected_symbols(request, market)
            kind = request.query_params.get("type", "FULL")
            if kind not in ("FULL", "MINI"):
                raise InvalidTickerType()
        except BinanceError as exc:
            return JSONResponse(exc.to_body(), status_code=exc.http_status)
        rows = [ticker_24hr(market, s, kind == "FULL") for s in symbols]
        return JSONResponse(rows[0] if single else rows)

    async def book(request: Request) -> Response:
        try:
            symbols, single = selected_symbols(request, market)
        except BinanceError as exc:
            return JSONResponse(exc.to_body(), status_code=exc.http_status)
        rows = [book_ticker(market, s) for s in symbols]
        return JSONResponse(rows[0] if single else rows)

    return [Route("/api/v3/ticker/24hr", ticker_24h), Route("/api/v3/ticker/bookTicker", book)]
