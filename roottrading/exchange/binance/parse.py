"""Parsers from Binance's wire formats (WebSocket events, REST bodies, kline CSV files) to Candle and Tick.

Why one module: the gateway, the REST backfill, the fake exchange and the tests must all agree on what a
Binance message means. Every function here either returns domain objects, returns an `Ignored` (a
well-formed message that is deliberately not market data for us, with the reason), or raises
`ParseError` (a ValueError) naming what is wrong. No other exception escapes.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from roottrading.domain import Candle, Tick
from roottrading.domain.market import INTERVAL_MS

__all__ = [
    "Ignored",
    "MarketEvent",
    "ParseError",
    "ParseResult",
    "kline_row_to_candle",
    "normalise_epoch_ms",
    "parse_kline_csv_line",
    "parse_rest",
    "parse_rest_klines",
    "parse_ws_event",
    "parse_ws_message",
    "read_kline_csv",
]

MarketEvent = Candle | Tick


class ParseError(ValueError):
    """A message that cannot be understood. `reason` is a short human explanation."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Ignored(msgspec.Struct, frozen=True):
    """A well-formed message that the market-data pipeline deliberately does not turn into Candle/Tick."""

    kind: str  # e.g. "depthUpdate", "executionReport", "control"
    reason: str


ParseResult = Candle | Tick | Ignored

# Event types that belong to a user-data stream (account/orders), spot and USDT-M futures.
_USER_DATA_EVENTS = {
    "executionReport": "spot user-data event (order update), not market data",
    "outboundAccountPosition": "spot user-data event (balances), not market data",
    "balanceUpdate": "spot user-data event (balance delta), not market data",
    "listStatus": "spot user-data event (OCO list status), not market data",
    "listenKeyExpired": "user-data stream control event, not market data",
    "externalLockUpdate": "spot user-data event (margin lock), not market data",
    "eventStreamTerminated": "user-data stream control event, not market data",
    "ORDER_TRADE_UPDATE": "futures ORDER_TRADE_UPDATE (user data) not handled by the market parser",
    "ACCOUNT_UPDATE": "futures ACCOUNT_UPDATE (user data) not handled by the market parser",
    "ALGO_UPDATE": "futures ALGO_UPDATE (user data) not handled by the market parser",
    "TRADE_LITE": "futures TRADE_LITE (user data) not handled by the market parser",
    "MARGIN_CALL": "futures MARGIN_CALL (user data) not handled by the market parser",
    "ACCOUNT_CONFIG_UPDATE": "futures ACCOUNT_CONFIG_UPDATE (user data) not handled by the market parser",
    "STRATEGY_UPDATE": "futures STRATEGY_UPDATE (user data) not handled by the market parser",
    "GRID_UPDATE": "futures GRID_UPDATE (user data) not handled by the market parser",
    "CONDITIONAL_ORDER_TRIGGER_REJECT": "futures user-data event not handled by the market parser",
}
# Market events we understand but do not use for candles/ticks.
_UNUSED_MARKET_EVENTS = {
    "depthUpdate": "order-book diff (depthUpdate) not used by the candle/tick pipeline",
    "markPriceUpdate": "futures mark price update not used by the spot pipeline",
    "forceOrder": "futures liquidation order stream not used by the spot pipeline",
    "24hrMiniTicker": "mini ticker carries no bid/ask; not used",
    "avgPrice": "average price stream not used",
    "continuous_kline": "futures continuous-contract kline not used by the spot pipeline",
    "indexPriceUpdate": "futures index price not used by the spot pipeline",
}

_json_decoder = msgspec.json.Decoder()


def _f(obj: dict[str, Any], key: str, what: str) -> float:
    try:
        value = float(obj[key])
    except KeyError:
        raise ParseError(f"{what}: missing field {key!r}") from None
    except (TypeError, ValueError):
        raise ParseError(f"{what}: field {key!r} is not a number: {obj[key]!r}") from None
    if not math.isfinite(value):
        raise ParseError(f"{what}: field {key!r} is not a finite number: {obj[key]!r}")
    return value


def _i(obj: dict[str, Any], key: str, what: str) -> int:
    try:
        value = obj[key]
    except KeyError:
        raise ParseError(f"{what}: missing field {key!r}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParseError(f"{what}: field {key!r} is not an integer: {value!r}")
    return value


def _s(obj: dict[str, Any], key: str, what: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise ParseError(f"{what}: missing or empty string field {key!r}")
    return value


def _decode(raw: bytes | str | bytearray | memoryview) -> Any:
    if isinstance(raw, (bytes, bytearray)):
        head = bytes(raw[:64]).lstrip()
        if head and head[:1] not in (b"{", b"[", b'"') and not head[:1].isalnum():
            raise ParseError("binary/non-JSON frame (e.g. Binance SBE); only JSON streams are supported")
    try:
        return _json_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise ParseError(f"malformed JSON: {exc}") from None


# ----------------------------------------------------------------------------------------- WebSocket


def parse_ws_message(raw: bytes | str, recv_ms: int | None = None) -> ParseResult:
    """Parse one WebSocket text frame (raw `/ws/...` event or combined `/stream` wrapper).

    `recv_ms` is the local receive time, used only for events that carry no time (spot bookTicker).
    """
    return parse_ws_event(_decode(raw), recv_ms)


def parse_ws_event(obj: Any, recv_ms: int | None = None) -> ParseResult:
    """Parse an already-decoded WebSocket message (dict)."""
    if not isinstance(obj, dict):
        raise ParseError(f"WebSocket message is a {type(obj).__name__}, expected a JSON object")
    if "data" in obj and "stream" in obj:  # combined-stream wrapper
        obj = obj["data"]
        if not isinstance(obj, dict):
            raise ParseError("combined-stream 'data' is not a JSON object")
    elif "event" in obj and "subscriptionId" in obj:  # WebSocket-API user-data wrapper
        obj = obj["event"]
        if not isinstance(obj, dict):
            raise ParseError("wrapped 'event' is not a JSON object")
    event = obj.get("e")
    if event is None:
        if "result" in obj and "id" in obj:
            return Ignored("control", "reply to a SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS request")
        if "code" in obj and "msg" in obj:
            return Ignored("server_error", f"server error {obj.get('code')}: {obj.get('msg')}")
        if "u" in obj and "b" in obj and "a" in obj and "s" in obj:
            return _book_ticker(obj, recv_ms)  # spot bookTicker has no "e"
        if "lastUpdateId" in obj:
            return Ignored("depth", "partial book depth snapshot not used by the candle/tick pipeline")
        raise ParseError(f"unknown WebSocket message without event type; keys={sorted(obj)[:12]}")
    if not isinstance(event, str):
        raise ParseError(f"event type 'e' is not a string: {event!r}")
    handler = _WS_HANDLERS.get(event)
    if handler is not None:
        return handler(obj, recv_ms)
    if event in _USER_DATA_EVENTS:
        return Ignored(event, _USER_DATA_EVENTS[event])
    if event in _UNUSED_MARKET_EVENTS:
        return Ignored(event, _UNUSED_MARKET_EVENTS[event])
    raise ParseError(f"unknown WebSocket event type {event!r}")


def _kline(obj: dict[str, Any], _recv_ms: int | None) -> Candle:
    k = obj.get("k")
    if not isinstance(k, dict):
        raise ParseError("kline event: missing object 'k'")
    what = "kline"
    interval = _s(k, "i", what)
    if interval not in INTERVAL_MS:
        raise ParseError(f"kline: unsupported interval {interval!r}")
    closed = k.get("x")
    if not isinstance(closed, bool):
        raise ParseError(f"kline: field 'x' (closed) must be a boolean, got {closed!r}")
    candle = Candle(
        symbol=_s(k, "s", what) if "s" in k else _s(obj, "s", what),
        interval=interval,
        open_time=_i(k, "t", what),
        close_time=_i(k, "T", what),
        open=_f(k, "o", what),
        high=_f(k, "h", what),
        low=_f(k, "l", what),
        close=_f(k, "c", what),
        volume=_f(k, "v", what),
        quote_volume=_f(k, "q", what) if "q" in k else 0.0,
        trades=_i(k, "n", what) if "n" in k else 0,
        closed=closed,
    )
    _check_candle(candle, what)
    return candle


def _trade(obj: dict[str, Any], _recv_ms: int | None) -> Tick:
    what = obj.get("e", "trade")
    trade_id = _i(obj, "a", what) if what == "aggTrade" else _i(obj, "t", what)
    maker = obj.get("m")
    return Tick(
        symbol=_s(obj, "s", what),
        time=_i(obj, "T", what),
        price=_f(obj, "p", what),
        quantity=_f(obj, "q", what),
        trade_id=trade_id,
        is_buyer_maker=maker if isinstance(maker, bool) else None,
    )


def _book_ticker(obj: dict[str, Any], recv_ms: int | None) -> Tick:
    what = "bookTicker"
    time = obj.get("T") or obj.get("E") or recv_ms
    if not isinstance(time, int):
        raise ParseError("bookTicker carries no event time (spot); pass recv_ms from the receiver")
    bid, ask = _f(obj, "b", what), _f(obj, "a", what)
    return Tick(symbol=_s(obj, "s", what), time=time, price=(bid + ask) / 2.0, bid=bid, ask=ask)


def _ticker_24h(obj: dict[str, Any], _recv_ms: int | None) -> Tick:
    what = "24hrTicker"
    return Tick(
        symbol=_s(obj, "s", what),
        time=_i(obj, "E", what),
        price=_f(obj, "c", what),
        quantity=_f(obj, "Q", what) if "Q" in obj else 0.0,
        bid=_f(obj, "b", what) if "b" in obj else None,
        ask=_f(obj, "a", what) if "a" in obj else None,
    )


_WS_HANDLERS: dict[str, Callable[[dict[str, Any], int | None], Candle | Tick]] = {
    "kline": _kline,
    "trade": _trade,
    "aggTrade": _trade,
    "bookTicker": _book_ticker,
    "24hrTicker": _ticker_24h,
}


def _check_candle(c: Candle, what: str) -> None:
    if not all(map(math.isfinite, (c.open, c.high, c.low, c.close, c.volume, c.quote_volume))):
        raise ParseError(f"{what}: non-finite value in o={c.open} h={c.high} l={c.low} c={c.close} v={c.volume}")
    if not (c.low <= min(c.open, c.close) and c.high >= max(c.open, c.close)):
        raise ParseError(f"{what}: inconsistent OHLC o={c.open} h={c.high} l={c.low} c={c.close}")
    if c.close_time < c.open_time:
        raise ParseError(f"{what}: close_time {c.close_time} before open_time {c.open_time}")
    if c.volume < 0:
        raise ParseError(f"{what}: negative volume {c.volume}")


# ---------------------------------------------------------------------------------------------- REST


def kline_row_to_candle(row: Sequence[Any], symbol: str, interval: str, *, closed: bool = True) -> Candle:
    """One `/api/v3/klines` row (12 columns; at least 6 accepted) to a Candle."""
    what = f"kline row for {symbol}"
    if not isinstance(row, (list, tuple)) or len(row) < 6:
        raise ParseError(f"{what}: expected an array of >= 6 columns, got {row!r:.80}")
    try:
        open_time = normalise_epoch_ms(int(row[0]))
        step = INTERVAL_MS[interval]
        close_time = normalise_epoch_ms(int(row[6])) if len(row) > 6 else open_time + step - 1
        candle = Candle(
            symbol=symbol,
            interval=interval,
            open_time=open_time,
            close_time=close_time,
            open=float(row[1]),
            high=float(row[2]),
            low=float(row[3]),
            close=float(row[4]),
            volume=float(row[5]),
            quote_volume=float(row[7]) if len(row) > 7 else 0.0,
            trades=int(row[8]) if len(row) > 8 else 0,
            closed=closed,
        )
    except KeyError:
        raise ParseError(f"{what}: unknown interval {interval!r}") from None
    except (TypeError, ValueError) as exc:
        raise ParseError(f"{what}: bad value ({exc})") from None
    _check_candle(candle, what)
    return candle


def parse_rest_klines(
    body: bytes | str | list[Any], symbol: str, interval: str, now_ms: int | None = None
) -> list[Candle]:
    """A `/api/v3/klines` (or `/fapi/v1/klines`) body. With `now_ms`, a row whose close_time is not yet
    past is returned with closed=False (real Binance includes the in-progress candle as the last row)."""
    rows = _decode(body) if isinstance(body, (bytes, str)) else body
    if not isinstance(rows, list):
        if isinstance(rows, dict) and "code" in rows:
            raise ParseError(f"klines: server error {rows.get('code')}: {rows.get('msg')}")
        raise ParseError(f"klines: expected a JSON array, got {type(rows).__name__}")
    out = []
    for row in rows:
        c = kline_row_to_candle(row, symbol, interval)
        if now_ms is not None and c.close_time >= now_ms:
            c = msgspec.structs.replace(c, closed=False)
        out.append(c)
    return out


def _rest_trades(body: Any, symbol: str | None, agg: bool) -> list[Tick]:
    if not isinstance(body, list):
        raise ParseError("trades: expected a JSON array")
    if not symbol:
        raise ParseError("trades body carries no symbol; pass symbol=")
    out = []
    for t in body:
        if not isinstance(t, dict):
            raise ParseError("trades: row is not an object")
        if agg:
            out.append(
                Tick(
                    symbol=symbol,
                    time=_i(t, "T", "aggTrades"),
                    price=_f(t, "p", "aggTrades"),
                    quantity=_f(t, "q", "aggTrades"),
                    trade_id=_i(t, "a", "aggTrades"),
                    is_buyer_maker=t.get("m") if isinstance(t.get("m"), bool) else None,
                )
            )
        else:
            out.append(
                Tick(
                    symbol=symbol,
                    time=_i(t, "time", "trades"),
                    price=_f(t, "price", "trades"),
                    quantity=_f(t, "qty", "trades"),
                    trade_id=_i(t, "id", "trades"),
                    is_buyer_maker=t.get("isBuyerMaker") if isinstance(t.get("isBuyerMaker"), bool) else None,
                )
            )
    return out


def _as_list(body: Any) -> list[Any]:
    return body if isinstance(body, list) else [body]


def _rest_ticker_price(body: Any, _symbol: str | None, now_ms: int | None) -> list[Tick]:
    out = []
    for t in _as_list(body):
        if not isinstance(t, dict):
            raise ParseError("ticker/price: row is not an object")
        time = t.get("time", now_ms)
        if not isinstance(time, int):
            raise ParseError("ticker/price carries no time (spot); pass now_ms")
        out.append(Tick(symbol=_s(t, "symbol", "ticker/price"), time=time, price=_f(t, "price", "ticker/price")))
    return out


def _rest_book_ticker(body: Any, _symbol: str | None, now_ms: int | None) -> list[Tick]:
    out = []
    for t in _as_list(body):
        if not isinstance(t, dict):
            raise ParseError("bookTicker: row is not an object")
        time = t.get("time", now_ms)
        if not isinstance(time, int):
            raise ParseError("ticker/bookTicker carries no time (spot); pass now_ms")
        bid, ask = _f(t, "bidPrice", "bookTicker"), _f(t, "askPrice", "bookTicker")
        out.append(Tick(symbol=_s(t, "symbol", "bookTicker"), time=time, price=(bid + ask) / 2, bid=bid, ask=ask))
    return out


def _rest_ticker_24h(body: Any, _symbol: str | None, _now_ms: int | None) -> list[Tick]:
    out = []
    for t in _as_list(body):
        if not isinstance(t, dict):
            raise ParseError("ticker/24hr: row is not an object")
        out.append(
            Tick(
                symbol=_s(t, "symbol", "ticker/24hr"),
                time=_i(t, "closeTime", "ticker/24hr"),
                price=_f(t, "lastPrice", "ticker/24hr"),
                bid=_f(t, "bidPrice", "ticker/24hr") if "bidPrice" in t else None,
                ask=_f(t, "askPrice", "ticker/24hr") if "askPrice" in t else None,
            )
        )
    return out


# Endpoints that are valid Binance REST but not candle/tick market data, with the reason.
_REST_IGNORED = {
    "/api/v3/ping": "connectivity check, no market data",
    "/api/v3/time": "server time: use BinanceMarketRest.server_time()",
    "/api/v3/exchangeInfo": "exchange metadata: use BinanceMarketRest.exchange_info()",
    "/api/v3/depth": "order-book snapshot not used by the candle/tick pipeline",
    "/api/v3/avgPrice": "average price is not a tick",
    "/api/v3/account": "signed account endpoint, not market data",
    "/api/v3/myTrades": "signed account trades, not market data",
    "/api/v3/order": "signed order endpoint, not market data",
    "/api/v3/openOrders": "signed order endpoint, not market data",
    "/api/v3/allOrders": "signed order endpoint, not market data",
    "/sapi/v1/asset/tradeFee": "signed wallet endpoint, not market data",
    "/sapi/v1/margin/account": "signed margin endpoint, not market data",
    "/sapi/v1/margin/isolated/account": "signed margin endpoint, not market data",
}


def parse_rest(
    endpoint: str,
    body: bytes | str | Any,
    *,
    symbol: str | None = None,
    interval: str | None = None,
    now_ms: int | None = None,
) -> list[MarketEvent] | Ignored:
    """Parse a REST body given the endpoint path it came from (e.g. "/api/v3/klines").

    Spot market endpoints give Candles/Ticks; other valid endpoints give `Ignored` with the reason;
    futures (`/fapi/...`) market endpoints with the same shapes as spot are parsed too.
    """
    data = _decode(body) if isinstance(body, (bytes, str)) else body
    path = endpoint.split("?", 1)[0].rstrip("/")
    if isinstance(data, dict) and "code" in data and "msg" in data:
        raise ParseError(f"{path}: server error {data['code']}: {data['msg']}")
    base = path.replace("/fapi/v1/", "/api/v3/").replace("/fapi/v2/", "/api/v3/")
    if base == "/api/v3/klines":
        if not symbol or not interval:
            raise ParseError("klines body carries no symbol/interval; pass symbol= and interval=")
        return list(parse_rest_klines(data, symbol, interval, now_ms))
    if base in ("/api/v3/trades", "/api/v3/historicalTrades"):
        return list(_rest_trades(data, symbol, agg=False))
    if base == "/api/v3/aggTrades":
        return list(_rest_trades(data, symbol, agg=True))
    if base == "/api/v3/ticker/price":
        return list(_rest_ticker_price(data, symbol, now_ms))
    if base == "/api/v3/ticker/bookTicker":
        return list(_rest_book_ticker(data, symbol, now_ms))
    if base in ("/api/v3/ticker/24hr", "/api/v3/ticker"):
        return list(_rest_ticker_24h(data, symbol, now_ms))
    if path.startswith(("/fapi/", "/futures/")):
        return Ignored("futures", f"futures endpoint {path} not handled by the spot market parser")
    if base in _REST_IGNORED:
        return Ignored(base, _REST_IGNORED[base])
    raise ParseError(f"unknown REST endpoint {endpoint!r}")


# ----------------------------------------------------------------------------------------------- CSV


def normalise_epoch_ms(value: int) -> int:
    """Binance data files switched to microsecond timestamps in 2025; also accept seconds. By magnitude."""
    if value >= 10**17:  # nanoseconds
        return value // 1_000_000
    if value >= 10**14:  # microseconds
        return value // 1_000
    if 0 < value < 10**11:  # seconds
        return value * 1_000
    return value


def parse_kline_csv_line(line: str | Sequence[str], symbol: str, interval: str) -> Candle | None:
    """One row of a data.binance.vision kline CSV (12 columns, optional header). None for a header row."""
    cells = next(csv.reader([line])) if isinstance(line, str) else list(line)
    if not cells or not cells[0].strip():
        raise ParseError("empty kline CSV row")
    if not cells[0].strip().lstrip("-").isdigit():
        if cells[0].strip().lower() in ("open_time", "opentime", "open time", "timestamp"):
            return None
        raise ParseError(f"kline CSV: first column is not an epoch timestamp: {cells[0]!r}")
    try:
        row = [int(cells[0])] + cells[1:6] + ([int(cells[6])] if len(cells) > 6 else []) + cells[7:]
    except ValueError:
        raise ParseError(f"kline CSV: close_time is not an integer: {cells[6]!r}") from None
    return kline_row_to_candle(row, symbol, interval)


def read_kline_csv(source: str | Path | Iterable[str], symbol: str, interval: str) -> list[Candle]:
    """All candles of a Binance kline CSV (path or iterable of lines)."""
    lines: Iterable[str]
    if isinstance(source, (str, Path)) and not (isinstance(source, str) and "\n" in source):
        lines = Path(source).read_text().splitlines()
    elif isinstance(source, str):
        lines = io.StringIO(source).read().splitlines()
    else:
        lines = source
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            c = parse_kline_csv_line(line, symbol, interval)
        except ParseError as exc:
            raise ParseError(f"line {n}: {exc.reason}") from None
        if c is not None:
            out.append(c)
    return out
