"""Message schemas: every topic round-trips; bad messages are refused with a clear MessageError, nothing else."""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roottrading import messages as m
from roottrading.domain import Candle, OrderRequest, Side, Signal, SignalStrength

SIG = Signal(id="s", time=1, symbol="BTCUSDT", strategy="x", side=Side.BUY, strength=SignalStrength.WEAK, price=1.5)


def test_topic_names_live_in_one_place() -> None:
    assert m.candles_topic("btcusdt") == "market.candles.BTCUSDT"
    assert m.ticks_topic("ETHUSDT") == "market.ticks.ETHUSDT"
    assert m.logs_topic("ERROR") == "logs.error"
    assert m.dead_letter_topic("signals") == "deadletter.signals"
    assert m.schema_for("market.candles.BTCUSDT") is Candle
    assert m.schema_for(m.ORDER_REQUESTS) is OrderRequest


def test_round_trip_keeps_id_key_and_exact_decimals() -> None:
    req = OrderRequest(
        id="r1",
        time=5,
        symbol="BTCUSDT",
        side=Side.SELL,
        quantity=Decimal("0.00012345"),
        price=Decimal("43210.12345678"),
    )
    raw = m.encode(m.ORDER_REQUESTS, req, key="BTCUSDT", msg_id="id-1", ts=9)
    msg = m.decode(raw)
    assert (msg.id, msg.key, msg.ts, msg.payload) == ("id-1", "BTCUSDT", 9, req)
    assert json.loads(raw)["payload"]["price"] == "43210.12345678"  # Decimals travel as strings, never floats


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"not json", "bad envelope"),
        (b'{"v":1,"id":"a","topic":"signals","key":null,"ts":0}', "bad envelope"),
        (b'{"v":1,"id":"a","topic":"nope","key":null,"ts":0,"payload":{}}', "unknown topic"),
        (b'{"v":99,"id":"a","topic":"signals","key":null,"ts":0,"payload":{}}', "schema v99"),
        (b'{"v":1,"id":"a","topic":"signals","key":null,"ts":0,"payload":{"id":"s"}}', "bad Signal payload"),
        (
            b'{"v":1,"id":"a","topic":"order.requests","key":null,"ts":0,"payload":{"id":"r","time":1,"symbol":"X",'
            b'"side":"HOLD"}}',
            "bad OrderRequest payload",
        ),
    ],
)
def test_malformed_messages_are_refused_with_the_reason(raw: bytes, needle: str) -> None:
    with pytest.raises(m.MessageError, match=needle):
        m.decode(raw)


def test_wrong_payload_type_is_refused_before_the_wire() -> None:
    with pytest.raises(m.MessageError, match="carries Signal, got Candle"):
        m.encode(
            m.SIGNALS,
            Candle(symbol="X", interval="1m", open_time=0, close_time=1, open=1, high=1, low=1, close=1, volume=1),
        )


@given(st.binary(max_size=200))
def test_decode_never_raises_anything_but_message_error(raw: bytes) -> None:
    with contextlib.suppress(m.MessageError):
        m.decode(raw)
