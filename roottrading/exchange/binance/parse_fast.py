"""Typed fast path for the WebSocket frames the gateway lives on: combined-stream kline, aggTrade, trade and
bookTicker frames decoded by msgspec straight into Structs (no intermediate dicts, no per-field helpers).

Why it cannot change meaning: the fast path only ever returns a result for a frame it fully understands
under strict typing (ints are ints, booleans are booleans, prices are numeric strings as Binance sends them);
anything else, including every frame that would be rejected, goes through `parse.parse_ws_event`, so errors,
`Ignored` results and lenient cases (numbers instead of strings, missing optional fields) are exactly the
generic parser's. tests/gateway/test_parse_fast.py checks both paths agree on every bundled fixture.
"""

from __future__ import annotations

from math import isfinite

import msgspec

from roottrading.domain import Candle, Tick
from roottrading.domain.market import INTERVAL_MS
from roottrading.exchange.binance.parse import ParseResult, _check_candle, _decode, parse_ws_event

__all__ = ["parse_ws_frame"]


class _K(msgspec.Struct):
    t: int
    T: int
    s: str
    i: str
    o: str
    c: str
    h: str
    l: str  # noqa: E741 - Binance's field name
    v: str
    x: bool
    n: int = 0
    q: str = "0"


class _KlineEv(msgspec.Struct):
    e: str
    k: _K


class _TradeEv(msgspec.Struct):
    e: str
    s: str
    T: int
    p: str
    q: str
    a: int = -1  # aggTrade id
    t: int = -1  # trade id
    m: bool | None = None


class _BookEv(msgspec.Struct):
    u: int
    s: str
    b: str
    a: str
    e: str | None = None
    T: int | None = None
    E: int | None = None


class _KlineFrame(msgspec.Struct):
    stream: str
    data: _KlineEv


class _TradeFrame(msgspec.Struct):
    stream: str
    data: _TradeEv


class _BookFrame(msgspec.Struct):
    stream: str
    data: _BookEv


_kline_dec = msgspec.json.Decoder(_KlineFrame)
_trade_dec = msgspec.json.Decoder(_TradeFrame)
_book_dec = msgspec.json.Decoder(_BookFrame)


def _num(s: str) -> float:
    v = float(s)
    if not isfinite(v):
        raise ValueError(s)  # the generic parser words the error
    return v


_FAST_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, ValueError)  # ParseError is a ValueError


def _fast(raw: bytes | str, recv_ms: int | None) -> tuple[str, ParseResult] | None:
    head = raw[:72]
    if isinstance(head, str):
        head = head.encode()
    if b"@kline_" in head:
        f = _kline_dec.decode(raw)
        k = f.data.k
        if f.data.e != "kline" or not k.s or k.i not in INTERVAL_MS:
            return None
        o, h, lo, cl, v, q = float(k.o), float(k.h), float(k.l), float(k.c), float(k.v), float(k.q)
        if not isfinite(o + h + lo + cl + v + q):  # nan/inf anywhere (or an overflowing sum): generic path
            return None
        c = Candle(
            symbol=k.s,
            interval=k.i,
            open_time=k.t,
            close_time=k.T,
            open=o,
            high=h,
            low=lo,
            close=cl,
            volume=v,
            quote_volume=q,
            trades=k.n,
            closed=k.x,
        )
        _check_candle(c, "kline")
        return f.stream, c
    if b"@aggTrade" in head or b"@trade" in head:
        g = _trade_dec.decode(raw)
        d = g.data
        tid = d.a if d.e == "aggTrade" else d.t if d.e == "trade" else -1
        if tid < 0 or not d.s:
            return None
        return g.stream, Tick(
            symbol=d.s, time=d.T, price=_num(d.p), quantity=_num(d.q), trade_id=tid, is_buyer_maker=d.m
        )
    if b"@bookTicker" in head:
        bf = _book_dec.decode(raw)
        b = bf.data
        time = b.T or b.E or recv_ms
        if b.e not in (None, "bookTicker") or not b.s or time is None:
            return None
        bid, ask = _num(b.b), _num(b.a)
        return bf.stream, Tick(symbol=b.s, time=time, price=(bid + ask) / 2.0, bid=bid, ask=ask)
    return None


def parse_ws_frame(raw: bytes | str, recv_ms: int | None = None) -> tuple[str | None, ParseResult]:
    """One WebSocket text frame -> (combined-stream name or None, result). Raises ParseError like
    `parse.parse_ws_message`. `recv_ms` stamps events without a time of their own (spot bookTicker)."""
    try:
        out = _fast(raw, recv_ms)
    except _FAST_ERRORS:
        out = None
    if out is not None:
        return out
    obj = _decode(raw)
    stream = obj.get("stream") if isinstance(obj, dict) else None
    return (stream if isinstance(stream, str) else None), parse_ws_event(obj, recv_ms)
