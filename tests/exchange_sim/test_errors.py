from __future__ import annotations

import msgspec

from roottrading.exchange import errors as e


def test_errors_carry_binance_code_and_text() -> None:
    assert (e.InsufficientBalance().code, e.InsufficientBalance().msg) == (
        -2010,
        "Account has insufficient balance for requested action.",
    )
    assert e.FilterFailure("LOT_SIZE").to_body() == {"code": -1013, "msg": "Filter failure: LOT_SIZE"}
    assert e.CancelRejected().to_body() == {"code": -2011, "msg": "Unknown order sent."}
    assert e.NoSuchOrder().to_body() == {"code": -2013, "msg": "Order does not exist."}
    assert e.InvalidSymbol().to_body() == {"code": -1121, "msg": "Invalid symbol."}
    assert e.InvalidTimestamp().code == -1021 and e.InvalidSignature().code == -1022
    assert e.InvalidApiKey().code == -2015 and e.InvalidApiKey().http_status == 401
    assert e.RateLimited().code == -1003 and e.RateLimited().http_status == 429
    assert msgspec.json.decode(e.WouldMatchAndTake().to_json()) == {
        "code": -2010,
        "msg": "Order would immediately match and take.",
    }


def test_error_from_body_maps_back_to_specific_class() -> None:
    for err in (
        e.InsufficientBalance(),
        e.FilterFailure("MIN_NOTIONAL"),
        e.CancelRejected(),
        e.NoSuchOrder(),
        e.InvalidSymbol(),
        e.RateLimited(),
        e.InvalidApiKey(),
        e.DuplicateOrder(),
    ):
        back = e.error_from_body(err.to_json())
        assert type(back) is type(err) and back == err
    assert e.error_from_body({"code": -2010, "msg": "something new"}).__class__ is e.NewOrderRejected
    unknown = e.error_from_body({"code": -9999, "msg": "x"})
    assert unknown.code == -9999 and unknown.msg == "x"
    assert isinstance(e.error_from_body(b"<html>"), e.UnknownError)
    assert isinstance(e.FilterFailure("X"), e.BinanceError) and e.FilterFailure("X").filter_type == "X"
