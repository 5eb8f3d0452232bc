"""Every spot user-data fixture (executionReport variants, account position, balance update) parses."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from roottrading.domain import OrderStatus, TimeInForce
from roottrading.exchange.base import BalanceUpdate, OrderUpdate
from roottrading.exchange.binance.parse import ParseError
from roottrading.exchange.binance.user_stream import BalanceDelta, StreamControl, parse_user_event

NAUTILUS = "binance_fixtures/nautilus"


def spot_user_files(root: Path) -> list[Path]:
    a = sorted((root / NAUTILUS / "python_integration/ws_messages").glob("ws_spot_execution_report_*.json"))
    b = sorted((root / NAUTILUS / "rust_crate/spot/user_data_json").glob("*.json"))
    return a + b


def test_every_execution_report_fixture_parses(shared_data: Path) -> None:
    files = spot_user_files(shared_data)
    assert len(files) >= 25
    kinds: dict[str, int] = {}
    for f in files:
        raw = f.read_bytes()
        event = parse_user_event(raw)
        kinds[type(event).__name__] = kinds.get(type(event).__name__, 0) + 1
        inner = json.loads(raw)
        inner = inner.get("data") or inner.get("event") or inner
        if isinstance(event, OrderUpdate):
            o = event.order
            assert o.exchange_order_id == str(inner["i"]) and o.quantity == Decimal(inner["q"])
            assert o.executed_quantity == Decimal(inner["z"])
            assert event.execution_type == inner["x"]
            if event.fill is not None:
                assert event.fill.quantity == Decimal(inner["l"]) > 0 and event.fill.price == Decimal(inner["L"]) > 0
                assert event.fill.trade_id == str(inner["t"])
    assert kinds["OrderUpdate"] >= 20 and kinds["BalanceUpdate"] == 2 and kinds["BalanceDelta"] == 2
    assert kinds["StreamControl"] == 1  # listStatus


def _load(shared_data: Path, name: str) -> OrderUpdate:
    ev = parse_user_event((shared_data / NAUTILUS / "python_integration/ws_messages" / name).read_bytes())
    assert isinstance(ev, OrderUpdate)
    return ev


def test_trade_fixture_gives_a_fill(shared_data: Path) -> None:
    ev = _load(shared_data, "ws_spot_execution_report_trade.json")
    assert ev.order.status is OrderStatus.PARTIALLY_FILLED and ev.order.client_order_id == "O-12345-test-trade"
    f = ev.fill
    assert f is not None
    assert (f.price, f.quantity, f.quote_quantity) == (Decimal("2499.5"), Decimal("0.5"), Decimal("1249.75"))
    assert (f.commission, f.commission_asset, f.is_maker, f.trade_id) == (Decimal("0.0005"), "ETH", True, "98765432")


def test_cancel_uses_the_original_client_id_and_odd_statuses_map(shared_data: Path) -> None:
    assert _load(shared_data, "ws_spot_execution_report_canceled.json").order.status is OrderStatus.CANCELED
    stp = _load(shared_data, "ws_spot_execution_report_trade_prevention.json")
    assert stp.order.status is OrderStatus.EXPIRED and stp.fill is None  # EXPIRED_IN_MATCH, t=-1
    exp = _load(shared_data, "ws_spot_execution_report_expired.json")
    assert exp.order.time_in_force is TimeInForce.GTC  # GTD has no platform equivalent
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


@pytest.mark.parametrize(
    "name",
    [
        "ws_spot_execution_report_trade_l_zero.json",
        "ws_spot_execution_report_trade_l_zero_canceled.json",
        "ws_spot_execution_report_trade_l_zero_partial.json",
    ],
)
def test_trade_without_price_or_quantity_updates_state_only(shared_data: Path, name: str) -> None:
    assert _load(shared_data, name).fill is None


def test_account_position_and_balance_update(shared_data: Path) -> None:
    d = shared_data / NAUTILUS / "rust_crate/spot/user_data_json"
    pos = parse_user_event((d / "account_position.json").read_bytes())
    assert isinstance(pos, BalanceUpdate)
    assert {b.asset: (b.free, b.locked) for b in pos.balances}["USDT"] == (Decimal(10000), Decimal(2500))
    delta = parse_user_event((d / "balance_update_wrapped.json").read_bytes())
    assert isinstance(delta, BalanceDelta) and delta.asset == "BTC" and delta.delta == Decimal(100)
    assert isinstance(parse_user_event(b'{"e":"listenKeyExpired","E":5}'), StreamControl)


@pytest.mark.parametrize(
    "raw", [b"{not json", b'{"e":"mystery"}', b"[1,2]", b'{"e":"executionReport","s":"X","S":"BUY","x":"NEW","i":1}']
)
def test_bad_frames_raise_parse_error(raw: bytes) -> None:
    with pytest.raises(ParseError):
        parse_user_event(raw)
