"""Every spot user-data sample (executionReport variants, account position, balance update, list status) parses.

The samples are ours (tests/binance_samples.py), written from Binance's documented field lists."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from roottrading.domain import OrderStatus, TimeInForce
from roottrading.exchange.base import BalanceUpdate, OrderUpdate
from roottrading.exchange.binance.parse import ParseError
from roottrading.exchange.binance.user_stream import BalanceDelta, StreamControl, parse_user_event
from tests.binance_samples import EXECUTION_REPORTS, TRADE_WITHOUT_PRICE_OR_QUANTITY, user_data_frames


def test_every_user_data_sample_parses() -> None:
    frames = user_data_frames()
    kinds: dict[str, int] = {}
    fills = 0
    for name, frame in frames.items():
        raw = msgspec.json.encode(frame)  # as received on the socket
        event = parse_user_event(raw)
        kinds[type(event).__name__] = kinds.get(type(event).__name__, 0) + 1
        inner = frame.get("data") or frame.get("event") or frame
        if isinstance(event, OrderUpdate):
            o = event.order
            assert o.exchange_order_id == str(inner["i"]) and o.quantity == Decimal(inner["q"]), name
            assert o.executed_quantity == Decimal(inner["z"]), name
            assert event.execution_type == inner["x"], name
            if event.fill is not None:
                assert event.fill.quantity == Decimal(inner["l"]) > 0 and event.fill.price == Decimal(inner["L"]) > 0
                assert event.fill.trade_id == str(inner["t"])
                fills += 1
    assert kinds == {
        "OrderUpdate": len(EXECUTION_REPORTS) + 2,
        "BalanceUpdate": 2,
        "BalanceDelta": 2,
        "StreamControl": 1,
    }
    assert fills == 5  # trade_partial (twice: stream and WebSocket API), trade_filled_*, calculated


def _load(name: str) -> OrderUpdate:
    ev = parse_user_event(msgspec.json.encode({"stream": "k", "data": EXECUTION_REPORTS[name]}))
    assert isinstance(ev, OrderUpdate)
    return ev


def test_trade_gives_a_fill() -> None:
    ev = _load("trade_partial")
    assert ev.order.status is OrderStatus.PARTIALLY_FILLED and ev.order.client_order_id == "rt-eth-0001"
    f = ev.fill
    assert f is not None
    assert (f.price, f.quantity, f.quote_quantity) == (Decimal("3120.45"), Decimal("0.25"), Decimal("780.1125"))
    assert (f.commission, f.commission_asset, f.is_maker, f.trade_id) == (Decimal("0.00025"), "ETH", True, "4412001")
    taker = _load("trade_filled_taker").fill
    assert taker is not None and (taker.is_maker, taker.commission_asset) == (False, "USDT")
    no_quote = _load("trade_filled_without_quote_quantity").fill  # Y empty: price x quantity
    assert no_quote is not None and no_quote.quote_quantity == Decimal("312.1")
    calc = _load("calculated").fill  # CALCULATED (liquidation / auto-close) is a fill too
    assert calc is not None and calc.quantity == Decimal("0.02")


def test_cancel_uses_the_original_client_id_and_odd_statuses_map() -> None:
    canceled = _load("canceled")
    assert canceled.order.status is OrderStatus.CANCELED and canceled.order.client_order_id == "rt-eth-0001"
    stp = _load("trade_prevention")
    assert stp.order.status is OrderStatus.EXPIRED and stp.fill is None  # EXPIRED_IN_MATCH, t=-1
    assert _load("expired_gtd").order.time_in_force is TimeInForce.GTC  # GTD has no platform equivalent
    rejected = _load("rejected")
    assert rejected.order.status is OrderStatus.REJECTED and rejected.order.reject_reason == "GTX_ORDER_REJECT"
    assert _load("pending_cancel").order.status is OrderStatus.PENDING_CANCEL
    assert _load("new_empty_client_id").order.client_order_id == ""
    stop = _load("new_stop_loss_limit").order
    assert (stop.price, stop.stop_price) == (Decimal("2990"), Decimal("3000"))
    cancel = {
        "e": "executionReport",
        "E": 1,
        "s": "BTCUSDT",
        "c": "cancel-req-1",
        "C": "my-order-7",
        "S": "SELL",
        "o": "LIMIT",
        "f": "GTC",
        "q": "1",
        "p": "10",
        "P": "0",
        "x": "CANCELED",
        "X": "CANCELED",
        "r": "NONE",
        "i": 5,
        "l": "0",
        "z": "0",
        "L": "0",
        "n": "0",
        "N": None,
        "T": 2,
        "t": -1,
        "O": 1,
        "Z": "0",
    }
    assert parse_user_event(cancel).order.client_order_id == "my-order-7"  # type: ignore[union-attr]


@pytest.mark.parametrize("name", TRADE_WITHOUT_PRICE_OR_QUANTITY)
def test_trade_without_price_or_quantity_updates_state_only(name: str) -> None:
    ev = _load(name)
    assert ev.fill is None and ev.order.status.value == EXECUTION_REPORTS[name]["X"]


def test_account_position_and_balance_update() -> None:
    frames = user_data_frames()
    pos = parse_user_event(msgspec.json.encode(frames["account_position"]))
    assert isinstance(pos, BalanceUpdate)
    assert {b.asset: (b.free, b.locked) for b in pos.balances}["USDT"] == (Decimal("8250.4"), Decimal("3744.54"))
    assert parse_user_event(msgspec.json.encode(frames["account_position_ws_api"])) == pos
    delta = parse_user_event(msgspec.json.encode(frames["balance_update_ws_api"]))
    assert isinstance(delta, BalanceDelta) and delta.asset == "USDT" and delta.delta == Decimal(-250)
    assert isinstance(parse_user_event(b'{"e":"listenKeyExpired","E":5}'), StreamControl)


@pytest.mark.parametrize(
    "raw", [b"{not json", b'{"e":"mystery"}', b"[1,2]", b'{"e":"executionReport","s":"X","S":"BUY","x":"NEW","i":1}']
)
def test_bad_frames_raise_parse_error(raw: bytes) -> None:
    with pytest.raises(ParseError):
        parse_user_event(raw)
