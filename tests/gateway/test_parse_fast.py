"""The typed WebSocket fast path (parse_fast.parse_ws_frame) must mean exactly what the generic parser means:
same Candle/Tick/Ignored, or the same ParseError reason, on every bundled recording and on generated frames
with wrong types, missing fields and numbers where Binance sends strings."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roottrading.domain import Candle, Tick
from roottrading.exchange.binance import parse_fast
from roottrading.exchange.binance.parse import ParseError, parse_ws_message
from roottrading.exchange.binance.parse_fast import parse_ws_frame
from tests.binance_samples import OTHER_WS_EVENTS, user_data_frames


def _generic(raw: bytes | str, recv_ms: int | None) -> tuple[str, object]:
    try:
        return "ok", parse_ws_message(raw, recv_ms=recv_ms)
    except ParseError as exc:
        return "error", exc.reason


def _fast(raw: bytes | str, recv_ms: int | None) -> tuple[str, object]:
    try:
        stream, result = parse_ws_frame(raw, recv_ms=recv_ms)
    except ParseError as exc:
        return "error", exc.reason
    obj = msgspec.json.decode(raw)
    assert stream == (obj.get("stream") if isinstance(obj, dict) and isinstance(obj.get("stream"), str) else None)
    return "ok", result


def _frames(fixtures_dir: Path) -> list[tuple[bytes | str, int | None]]:
    """Every recorded frame in tests/fixtures (gzip-compressed recordings) and every own WebSocket sample."""
    root = fixtures_dir / "binance_fixtures"
    out: list[tuple[bytes | str, int | None]] = []
    for path in sorted((root / "hftbacktest").rglob("*.gz")):
        with gzip.open(path, "rt") as fh:
            for line in fh:
                ts, _, payload = line.rstrip("\n").partition(" ")
                out.append((payload, int(ts) // 1_000_000))
    for path in sorted((root / "cryptofeed").glob("BINANCE*.ws.*.gz")):
        with gzip.open(path, "rt") as fh:
            lines = fh.read().splitlines()
        for line in filter(None, lines[1:]):
            ts, _, payload = line.partition(": ")
            out.append((payload, int(float(ts) * 1000)))
    for frame in [*user_data_frames().values(), *OTHER_WS_EVENTS.values()]:
        out.append((msgspec.json.encode(frame), 0))
    return out


def test_fast_path_agrees_with_generic_parser_on_every_recording(fixtures_dir: Path) -> None:
    frames = _frames(fixtures_dir)
    assert len(frames) > 6000
    fast_hits = 0
    for raw, recv_ms in frames:
        assert _fast(raw, recv_ms) == _generic(raw, recv_ms), raw[:200]
        fast_hits += _safe_fast(raw, recv_ms)
    assert fast_hits > 50, "the typed path must actually serve the combined-stream recordings"


def _safe_fast(raw: bytes | str, recv_ms: int | None) -> bool:
    try:
        return parse_fast._fast(raw, recv_ms) is not None
    except parse_fast._FAST_ERRORS:
        return False


KLINE = {
    "t": 1_704_067_200_000,
    "T": 1_704_067_259_999,
    "s": "BTCUSDT",
    "i": "1m",
    "f": 1,
    "L": 2,
    "o": "42000.10",
    "c": "42010.00",
    "h": "42020.00",
    "l": "41990.00",
    "v": "12.5",
    "n": 42,
    "x": True,
    "q": "525000.0",
    "V": "1",
    "Q": "2",
    "B": "0",
}
AGG = {
    "e": "aggTrade",
    "E": 1,
    "s": "BTCUSDT",
    "a": 5,
    "p": "42000.1",
    "q": "0.01",
    "f": 1,
    "l": 2,
    "T": 1_704_067_200_123,
    "m": True,
    "M": True,
}
TRADE = {
    "e": "trade",
    "E": 1,
    "s": "BTCUSDT",
    "t": 7,
    "p": "42000.1",
    "q": "0.01",
    "T": 1_704_067_200_123,
    "m": False,
    "M": True,
}
BOOK = {"u": 400900217, "s": "BNBUSDT", "b": "25.35190000", "B": "31.21000000", "a": "25.36520000", "A": "40.66000000"}

ODD_VALUES = st.sampled_from([None, True, False, 0, -1, 1.5, "", "abc", "1", "nan", "1e3", [], {}, 10**20])


@st.composite
def mutated_frame(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["kline", "aggTrade", "trade", "bookTicker"]))
    if kind == "kline":
        inner = dict(KLINE)
        data: dict[str, Any] = {"e": "kline", "E": 1, "s": "BTCUSDT", "k": inner}
        stream = "btcusdt@kline_1m"
    else:
        inner = dict({"aggTrade": AGG, "trade": TRADE, "bookTicker": BOOK}[kind])
        data = inner
        stream = f"btcusdt@{kind}"
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(sorted(inner)))
        if draw(st.booleans()):
            inner.pop(key, None)
        else:
            inner[key] = draw(ODD_VALUES)
    if kind == "bookTicker" and draw(st.booleans()):
        data["E"] = draw(st.sampled_from([0, 5, 1_704_067_200_000]))
    if draw(st.integers(0, 9)) == 0:
        data["e"] = draw(st.sampled_from(["kline", "trade", "aggTrade", "bookTicker", "nope", 3]))
    return msgspec.json.encode({"stream": stream, "data": data})


@settings(max_examples=400, deadline=None)
@given(frame=mutated_frame(), recv_ms=st.sampled_from([None, 1_704_067_200_999]))
def test_fast_path_agrees_with_generic_parser_on_mutated_frames(frame: bytes, recv_ms: int | None) -> None:
    assert _fast(frame, recv_ms) == _generic(frame, recv_ms)
    assert _fast(frame.decode(), recv_ms) == _generic(frame.decode(), recv_ms)


def test_typical_frames_take_the_typed_path_and_give_the_expected_values() -> None:
    kline = msgspec.json.encode(
        {"stream": "btcusdt@kline_1m", "data": {"e": "kline", "E": 1, "s": "BTCUSDT", "k": KLINE}}
    )
    stream, c = parse_fast._fast(kline, None)  # type: ignore[misc]
    assert stream == "btcusdt@kline_1m" and isinstance(c, Candle)
    assert (c.open, c.high, c.low, c.close, c.volume, c.quote_volume, c.trades, c.closed) == (
        42000.10,
        42020.0,
        41990.0,
        42010.0,
        12.5,
        525000.0,
        42,
        True,
    )
    book = msgspec.json.encode({"stream": "bnbusdt@bookTicker", "data": BOOK})
    stream, t = parse_fast._fast(book, 123)  # type: ignore[misc]
    assert isinstance(t, Tick) and t.time == 123 and t.bid == 25.3519 and t.ask == 25.3652
    agg = msgspec.json.encode({"stream": "btcusdt@aggTrade", "data": AGG})
    _, t = parse_fast._fast(agg, None)  # type: ignore[misc]
    assert isinstance(t, Tick) and t.trade_id == 5 and t.is_buyer_maker is True and t.bid is None


@pytest.mark.parametrize(
    "raw",
    [
        b'{"stream":"x@kline_1m","data":{"e":"kline","k":{"t":1,"T":2,"s":"X","i":"1m","o":"2","h":"1","l":"1",'
        b'"c":"1","v":"1","x":true}}}',
        b'{"stream":"x@kline_1m","data":{"e":"kline","k":{"t":1,"T":2,"s":"X","i":"7m","o":"1","h":"1","l":"1",'
        b'"c":"1","v":"1","x":true}}}',
        b'{"stream":"x@trade","data":{"e":"trade","s":"X","t":1,"p":"abc","q":"1","T":1}}',
        b'{"stream":"x@bookTicker","data":{"u":1,"s":"X","b":"1","a":"2"}}',
        b'{"stream":"x@kline_1m","data":',
    ],
)
def test_bad_frames_raise_the_generic_reason(raw: bytes) -> None:
    with pytest.raises(ParseError) as fast:
        parse_ws_frame(raw)
    with pytest.raises(ParseError) as generic:
        parse_ws_message(raw)
    assert fast.value.reason == generic.value.reason
