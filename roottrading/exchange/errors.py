"""Binance error codes as exceptions.

Why: the trader must react to the *same* errors whether it talks to Binance, to the fake Binance server
or to the in-process simulator. Every error carries Binance's numeric `code` and its message text `msg`
(texts copied from Binance's spot API error documentation), and renders Binance's JSON error body, so the
fake server can answer exactly as Binance does and the Binance client can map a body back to the class
with `error_from_body`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec


class ExchangeError(Exception):
    """Base of every exchange-side failure (Binance-coded or transport-level)."""


class OrderFateUnknown(ExchangeError):
    """A new order or a cancel got no answer and the exchange could not be asked about it yet: the order may
    or may not exist. Part of the port's vocabulary so every caller treats it the same way: query by client
    order id before any retry, never assume."""

    def __init__(self, symbol: str, client_order_id: str, cause: str) -> None:
        super().__init__(f"order {client_order_id} on {symbol}: outcome unknown ({cause})")
        self.symbol = symbol
        self.client_order_id = client_order_id
        self.cause = cause


class OrderNotFound(OrderFateUnknown):
    """The exchange was asked after an unknown outcome and does not have the order: resend with the same id."""


class BinanceError(ExchangeError):
    """An error answered by the exchange: `code` and `msg` exactly as in Binance's JSON body."""

    code: ClassVar[int] = -1000
    default_msg: ClassVar[str] = "An unknown error occurred while processing the request."
    http_status: ClassVar[int] = 400

    def __init__(self, msg: str | None = None) -> None:
        self.msg = msg if msg is not None else self.default_msg
        super().__init__(f"Binance error {self.code}: {self.msg}")

    def to_body(self) -> dict[str, Any]:
        """The JSON body Binance sends for this error: {"code": -2010, "msg": "..."}."""
        return {"code": self.code, "msg": self.msg}

    def to_json(self) -> bytes:
        return msgspec.json.encode(self.to_body())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BinanceError) and (self.code, self.msg) == (other.code, other.msg)

    def __hash__(self) -> int:
        return hash((self.code, self.msg))


class UnknownError(BinanceError):
    code = -1000


class Disconnected(BinanceError):
    code = -1001
    default_msg = "Internal error; unable to process your request. Please try again."
    http_status = 503


class RateLimited(BinanceError):
    code = -1003
    default_msg = (
        "Too much request weight used; current limit is 1200 request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API."
    )
    http_status = 429


class TooManyOrders(BinanceError):
    code = -1015
    default_msg = "Too many new orders; current limit is 50 orders per 10 SECOND."
    http_status = 429


class InvalidTimestamp(BinanceError):
    code = -1021
    default_msg = "Timestamp for this request is outside of the recvWindow."


class InvalidSignature(BinanceError):
    code = -1022
    default_msg = "Signature for this request is not valid."


class IllegalParameter(BinanceError):
    """-1100..-1106 family collapsed into the codes the engine needs."""

    code = -1100
    default_msg = "Illegal characters found in a parameter."


class MandatoryParamMissing(BinanceError):
    code = -1102
    default_msg = "A mandatory parameter was not sent, was empty/null, or malformed."

    @classmethod
    def for_param(cls, name: str) -> MandatoryParamMissing:
        return cls(f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


class ParamNotRequired(BinanceError):
    code = -1106
    default_msg = "A parameter was sent when not required."

    @classmethod
    def for_param(cls, name: str) -> ParamNotRequired:
        return cls(f"Parameter '{name}' sent when not required.")


class BadPrecision(BinanceError):
    code = -1111
    default_msg = "Precision is over the maximum defined for this asset."


class InvalidTimeInForce(BinanceError):
    code = -1115
    default_msg = "Invalid timeInForce."


class InvalidOrderType(BinanceError):
    code = -1116
    default_msg = "Invalid orderType."


class InvalidSide(BinanceError):
    code = -1117
    default_msg = "Invalid side."


class InvalidSymbol(BinanceError):
    code = -1121
    default_msg = "Invalid symbol."


class InvalidMessage(BinanceError):
    """-1013: the request was understood but rejected by a symbol filter or a basic sanity check."""

    code = -1013
    default_msg = "Invalid quantity."


class FilterFailure(InvalidMessage):
    """-1013 "Filter failure: <FILTER>"; `filter_type` names the failing filter."""

    def __init__(self, filter_type: str) -> None:
        self.filter_type = filter_type
        super().__init__(f"Filter failure: {filter_type}")


class NewOrderRejected(BinanceError):
    code = -2010
    default_msg = "New order rejected."


class InsufficientBalance(NewOrderRejected):
    default_msg = "Account has insufficient balance for requested action."


class DuplicateOrder(NewOrderRejected):
    default_msg = "Duplicate order sent."


class WouldMatchAndTake(NewOrderRejected):
    """A LIMIT_MAKER order that would cross the book."""

    default_msg = "Order would immediately match and take."


class WouldTriggerImmediately(NewOrderRejected):
    """A stop/take-profit order whose trigger condition already holds."""

    default_msg = "Order would trigger immediately."


class OrderTypeNotSupported(NewOrderRejected):
    default_msg = "Unsupported order combination."


class NoMarketPrice(NewOrderRejected):
    """Simulator only: a market order before any price is known (Binance would have a book)."""

    default_msg = "Market orders are not supported for this symbol."


class CancelRejected(BinanceError):
    code = -2011
    default_msg = "Unknown order sent."


class NoSuchOrder(BinanceError):
    code = -2013
    default_msg = "Order does not exist."


class BadApiKeyFormat(BinanceError):
    code = -2014
    default_msg = "API-key format invalid."
    http_status = 401


class InvalidApiKey(BinanceError):
    code = -2015
    default_msg = "Invalid API-key, IP, or permissions for action."
    http_status = 401


_BY_CODE: dict[int, type[BinanceError]] = {
    cls.code: cls
    for cls in (
        UnknownError,
        Disconnected,
        RateLimited,
        TooManyOrders,
        InvalidTimestamp,
        InvalidSignature,
        IllegalParameter,
        MandatoryParamMissing,
        ParamNotRequired,
        BadPrecision,
        InvalidTimeInForce,
        InvalidOrderType,
        InvalidSide,
        InvalidSymbol,
        InvalidMessage,
        NewOrderRejected,
        CancelRejected,
        NoSuchOrder,
        BadApiKeyFormat,
        InvalidApiKey,
    )
}
_BY_MSG: dict[tuple[int, str], type[BinanceError]] = {
    (c.code, c.default_msg): c
    for c in (InsufficientBalance, DuplicateOrder, WouldMatchAndTake, WouldTriggerImmediately, OrderTypeNotSupported)
}


def error_from_body(body: dict[str, Any] | bytes | str) -> BinanceError:
    """Map a Binance JSON error body back to the most specific exception class (unknown codes -> base class)."""
    if not isinstance(body, dict):
        try:
            body = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return UnknownError(f"undecodable error body: {body!r:.200}")
    if not isinstance(body, dict) or "code" not in body:
        return UnknownError(f"not a Binance error body: {body!r:.200}")
    code = int(body["code"])
    msg = str(body.get("msg", ""))
    if code == -1013 and msg.startswith("Filter failure: "):
        return FilterFailure(msg.removeprefix("Filter failure: "))
    cls = _BY_MSG.get((code, msg)) or _BY_CODE.get(code)
    if cls is None:
        err = BinanceError(msg)
        err.code = code  # type: ignore[misc]  # instance attribute shadows the class constant
        return err
    return cls(msg)
