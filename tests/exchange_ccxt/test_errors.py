"""ccxt failures -> the port's errors, and which of them leave an order's outcome unknown."""

from __future__ import annotations

import ccxt
import pytest

from roottrading.exchange import errors as e
from roottrading.exchange.ccxt.errors import is_fate_unknown, port_error


@pytest.mark.parametrize(
    ("exc", "expected", "unknown"),
    [
        (ccxt.InvalidOrder('binance {"code":-1013,"msg":"Filter failure: NOTIONAL"}'), e.FilterFailure, False),
        (
            ccxt.InvalidNonce(
                'binance {"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}'
            ),
            e.InvalidTimestamp,
            False,
        ),
        (
            ccxt.ExchangeError(
                'binance {"code":-1000,"msg":"An unknown error occurred while processing the request."}'
            ),
            e.UnknownError,
            True,
        ),
        (ccxt.OrderNotFound('binance {"code":-2013,"msg":"Order does not exist."}'), e.NoSuchOrder, False),
        (ccxt.InsufficientFunds("kraken EOrder:Insufficient funds"), e.InsufficientBalance, False),
        (ccxt.OrderNotFound("kraken EOrder:Unknown order"), e.NoSuchOrder, False),
        (ccxt.BadSymbol("kraken unknown pair"), e.InvalidSymbol, False),
        (ccxt.RateLimitExceeded("kraken EAPI:Rate limit exceeded"), e.RateLimited, False),
        (ccxt.RequestTimeout("kraken timed out"), e.Disconnected, True),
        (ccxt.ExchangeNotAvailable("kraken 502"), e.Disconnected, True),
        (ccxt.AuthenticationError("kraken EAPI:Invalid key"), e.InvalidSignature, False),
    ],
)
def test_mapping(exc: ccxt.BaseError, expected: type, unknown: bool) -> None:
    assert type(port_error(exc)) is expected
    assert is_fate_unknown(exc) is unknown


def test_an_unknown_order_on_cancel_is_cancel_rejected() -> None:
    assert isinstance(port_error(ccxt.OrderNotFound("kraken EOrder:Unknown order"), cancel=True), e.CancelRejected)
