"""ccxt's exception hierarchy -> the port's Binance-coded errors, so the trader reacts the same way whatever
exchange is behind the port. Order of the checks matters: ccxt's classes nest (OrderNotFound is an
InvalidOrder; the rate-limit classes are NetworkErrors)."""

from __future__ import annotations

import ccxt
import msgspec

from roottrading.exchange import errors as e

# refused for the rate: known not executed (in ccxt 4.5 RateLimitExceeded is no longer a DDoSProtection)
_RATE_LIMITED = (ccxt.DDoSProtection, ccxt.RateLimitExceeded)
# Binance codes whose execution status is unknown (its docs: unknown error, disconnected, backend timeouts)
UNKNOWN_OUTCOME_CODES = (-1000, -1001, -1006, -1007)


def is_fate_unknown(exc: BaseException) -> bool:
    """No answer, or a server error: the request may or may not have been executed (ask by client id)."""
    coded = binance_body(exc)
    if coded is not None:  # the exchange answered: its code says whether the outcome is known (-1021: refused)
        return coded.code in UNKNOWN_OUTCOME_CODES
    return isinstance(exc, ccxt.NetworkError) and not isinstance(exc, _RATE_LIMITED)


def binance_body(exc: BaseException) -> e.BinanceError | None:
    """The Binance-coded error when ccxt's message carries a Binance-shaped body (`binance {"code":-1013,...}`):
    Binance and the exchanges that copy its API answer with the very codes the port speaks."""
    text = str(exc)
    start = text.find("{")
    if start < 0:
        return None
    try:
        body = msgspec.json.decode(text[start:])
    except msgspec.DecodeError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("code"), int) or body["code"] >= 0:
        return None
    return e.error_from_body(body)


def port_error(exc: ccxt.BaseError, *, cancel: bool = False) -> e.ExchangeError:
    """The port's error for a ccxt failure (`cancel`: an unknown order is CancelRejected, as Binance's -2011)."""
    coded = binance_body(exc)
    if coded is not None:
        return coded
    msg = f"ccxt {type(exc).__name__}: {exc}"[:500]
    if isinstance(exc, ccxt.OrderNotFound):
        return e.CancelRejected(msg) if cancel else e.NoSuchOrder(msg)
    if isinstance(exc, ccxt.InsufficientFunds):
        return e.InsufficientBalance(msg)
    if isinstance(exc, ccxt.DuplicateOrderId):
        return e.DuplicateOrder(msg)
    if isinstance(exc, ccxt.BadSymbol):
        return e.InvalidSymbol(msg)
    if isinstance(exc, ccxt.InvalidOrder):
        return e.InvalidMessage(msg)
    if isinstance(exc, _RATE_LIMITED):
        return e.RateLimited(msg)
    if isinstance(exc, ccxt.InvalidNonce):
        return e.InvalidTimestamp(msg)
    if isinstance(exc, ccxt.AuthenticationError | ccxt.PermissionDenied | ccxt.AccountSuspended):
        return e.InvalidSignature(msg)
    if isinstance(exc, ccxt.BadRequest):
        return e.IllegalParameter(msg)
    if isinstance(exc, ccxt.NetworkError):
        return e.Disconnected(msg)
    return e.UnknownError(msg)
