"""Binance Spot public REST routes, answered from the simulated market (Binance semantics and errors)."""

from __future__ import annotations

import bisect
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from roottrading.domain import Candle
from roottrading.domain.market import INTERVAL_MS
from roottrading.exchange.fake_binance.market import fmt

if TYPE_CHECKING:
    from roottrading.exchange.fake_binance.app import FakeBinanceState


def binance_error(code: int, msg: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg}, status_code=status)


def _kline_row(c: Candle) -> list[Any]:
    return [
        c.open_time,
        fmt(c.open),
        fmt(c.high),
        fmt(c.low),
        fmt(c.close),
        fmt(c.volume),
        c.close_time,
        fmt(c.quote_volume),
        c.trades,
        "0.00000000",
        "0.00000000",
        "0",
    ]


def _decimals(x: float) -> int:
    return len(fmt(x).rstrip("0").split(".")[1])


def symbol_info(symbol: str, candles: list[Candle]) -> dict[str, Any]:
    """An exchangeInfo symbol entry with filters derived from the data's precision, shaped like Binance's."""
    quote = next(
        (q for q in ("USDT", "BUSD", "USDC", "FDUSD", "BTC", "ETH", "BNB", "EUR") if symbol.endswith(q)), symbol[-4:]
    )
    base = symbol[: -len(quote)]
    sample = candles[-200:]
    price_dp = max(max(_decimals(v) for c in sample for v in (c.open, c.high, c.low, c.close)), 2)
    qty_dp = min(max(max(_decimals(c.volume) for c in sample), 3), 8)
    tick = str(Decimal(1).scaleb(-price_dp).quantize(Decimal("1e-8")))
    step = str(Decimal(1).scaleb(-qty_dp).quantize(Decimal("1e-8")))
    min_notional = "5.00000000" if quote in ("USDT", "BUSD", "USDC", "FDUSD", "EUR") else "0.00010000"
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000.00000000", "tickSize": tick},
            {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000.00000000", "stepSize": step},
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": "0.00000000",
                "maxQty": "1000.00000000",
                "stepSize": "0.00000000",
            },
            {
                "filterType": "TRAILING_DELTA",
                "minTrailingAboveDelta": 10,
                "maxTrailingAboveDelta": 2000,
                "minTrailingBelowDelta": 10,
                "maxTrailingBelowDelta": 2000,
            },
            {
                "filterType": "PERCENT_PRICE_BY_SIDE",
                "bidMultiplierUp": "5",
                "bidMultiplierDown": "0.2",
                "askMultiplierUp": "5",
                "askMultiplierDown": "0.2",
                "avgPriceMins": 5,
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": min_notional,
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def market_routes(state: FakeBinanceState) -> list[Route]:
    market = state.market
    cfg = state.config

    def _symbol(request: Request) -> str | JSONResponse:
        sym = request.query_params.get("symbol")
        if not sym:
            return binance_error(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        if sym.upper() not in market.series:
            return binance_error(-1121, "Invalid symbol.")
        return sym.upper()

    async def ping(_: Request) -> Response:
        return JSONResponse({})

    async def server_time(_: Request) -> Response:
        return JSONResponse({"serverTime": market.now_ms})

    async def exchange_info(request: Request) -> Response:
        wanted = list(market.series)
        if "symbol" in request.query_params:
            wanted = [request.query_params["symbol"].upper()]
        elif "symbols" in request.query_params:
            try:
                wanted = [s.upper() for s in json.loads(request.query_params["symbols"])]
            except (ValueError, AttributeError):
                return binance_error(-1100, "Illegal characters found in parameter 'symbols'.")
        if any(s not in market.series for s in wanted):
            return binance_error(-1121, "Invalid symbol.")
        return JSONResponse(
            {
                "timezone": "UTC",
                "serverTime": market.now_ms,
                "rateLimits": [
                    {
                        "rateLimitType": "REQUEST_WEIGHT",
                        "interval": "MINUTE",
                        "intervalNum": 1,
                        "limit": cfg.weight_limit,
                    },
                    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
                ],
                "exchangeFilters": [],
                "symbols": [symbol_info(s, market.series[s]) for s in wanted],
            }
        )

    async def klines(request: Request) -> Response:
        sym = _symbol(request)
        if isinstance(sym, JSONResponse):
            return sym
        q = request.query_params
        interval = q.get("interval")
        if not interval:
            return binance_error(-1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.")
        if interval not in INTERVAL_MS:
            return binance_error(-1120, "Invalid interval.")
        if interval != cfg.interval:
            return binance_error(-1120, f"Invalid interval (the fake exchange replays {cfg.interval} only).")
        try:
            limit = int(q.get("limit", 500))
            start = int(q["startTime"]) if "startTime" in q else None
            end = int(q["endTime"]) if "endTime" in q else None
        except ValueError:
            return binance_error(-1100, "Illegal characters found in a parameter.")
        if not 1 <= limit <= 1000:
            return binance_error(-1130, "Data sent for parameter 'limit' is not valid.")
        if start is not None and end is not None and start > end:
            return binance_error(-1023, "Start time is greater than end time.")
        candles = market.closed_candles(sym)
        if cfg.rest_include_open_candle:
            cur = market.current_candle(sym)
            candles = [*candles, cur] if cur is not None else candles
        opens = [c.open_time for c in candles]
        hi = len(candles) if end is None else bisect.bisect_right(opens, end)
        if start is not None:
            lo = bisect.bisect_left(opens, start)
            rows = candles[lo : min(hi, lo + limit)]
        else:
            rows = candles[max(0, hi - limit) : hi]
        return JSONResponse([_kline_row(c) for c in rows])

    async def ticker_price(request: Request) -> Response:
        if "symbol" in request.query_params:
            sym = _symbol(request)
            if isinstance(sym, JSONResponse):
                return sym
            return JSONResponse({"symbol": sym, "price": fmt(market.last_price[sym])})
        return JSONResponse([{"symbol": s, "price": fmt(p)} for s, p in market.last_price.items()])

    async def depth(request: Request) -> Response:
        sym = _symbol(request)
        if isinstance(sym, JSONResponse):
            return sym
        try:
            limit = int(request.query_params.get("limit", 100))
        except ValueError:
            return binance_error(-1100, "Illegal characters found in parameter 'limit'.")
        if not 1 <= limit <= 5000:
            return binance_error(-1130, "Data sent for parameter 'limit' is not valid.")
        bid, ask = market.book[sym]
        tick = ask - bid if ask > bid else 0.01
        levels = min(limit, 50)
        return JSONResponse(
            {
                "lastUpdateId": market.now_ms,
                "bids": [[fmt(bid - i * tick / 2), fmt(1.0 + i)] for i in range(levels)],
                "asks": [[fmt(ask + i * tick / 2), fmt(1.0 + i)] for i in range(levels)],
            }
        )

    return [
        Route("/api/v3/ping", ping),
        Route("/api/v3/time", server_time),
        Route("/api/v3/exchangeInfo", exchange_info),
        Route("/api/v3/klines", klines),
        Route("/api/v3/ticker/price", ticker_price),
        Route("/api/v3/depth", depth),
    ]
