"""Binance-shaped WebSocket endpoints: `/ws/<stream>` (raw), `/ws` + SUBSCRIBE, `/stream?streams=a/b`
(combined wrapper), with the fault injection (drops, stalls, malformed, duplicated, out-of-order frames)."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from roottrading.domain.market import INTERVAL_MS
from roottrading.exchange.fake_binance.hub import Connection

if TYPE_CHECKING:
    from collections.abc import Callable

    from roottrading.exchange.fake_binance.app import FakeBinanceState

log = structlog.get_logger(__name__)
_STREAM_RE = re.compile(r"^([a-z0-9]+)@(trade|aggTrade|bookTicker|kline_([0-9]+[mhdwM]))$")


def market_stream_validator(symbols: set[str]) -> Callable[[str], bool]:
    """Accept `<sym>@trade|aggTrade|bookTicker|kline_<interval>` for served symbols (lower case)."""

    def valid(stream: str) -> bool:
        m = _STREAM_RE.match(stream)
        return m is not None and m.group(1) in symbols and (m.group(3) is None or m.group(3) in INTERVAL_MS)

    return valid


def _wrap(conn: Connection, stream: str, payload: bytes) -> bytes:
    if not conn.combined:
        return payload
    return b'{"stream":"' + stream.encode() + b'","data":' + payload + b"}"


async def _sender(ws: WebSocket, conn: Connection, state: FakeBinanceState, rng: random.Random) -> None:
    cfg = state.config
    started = time.monotonic()
    lifetime = cfg.drop_every_s * rng.uniform(0.8, 1.2) if cfg.drop_every_s else None
    next_stall = started + cfg.stall_every_s * rng.uniform(0.8, 1.2) if cfg.stall_every_s else None
    held: bytes | None = None
    stalling = False
    while True:
        # a stalled connection stays open (that is the fault being simulated): no scheduled drop meanwhile
        timeout = None if lifetime is None or stalling else max(0.0, started + lifetime - time.monotonic())
        try:
            stream, payload = await asyncio.wait_for(conn.queue.get(), timeout)
        except TimeoutError:
            stream = ""
        now = time.monotonic()
        if conn.overflowed or (lifetime is not None and not stalling and now - started >= lifetime):
            state.stats["drops"] += 1
            await ws.close(code=1001 if not conn.overflowed else 1008)
            return
        if not stream:
            continue
        if next_stall is not None and now >= next_stall:
            if not stalling:
                stalling = True
                state.stats["stalls"] += 1
            if now < next_stall + cfg.stall_duration_s:
                continue  # silent: the message is lost, the socket stays open
            stalling = False
            next_stall = now + cfg.stall_every_s * rng.uniform(0.8, 1.2)  # type: ignore[operator]
        frame = _wrap(conn, stream, payload)
        if rng.random() < cfg.malformed_prob:
            state.stats["malformed"] += 1
            await ws.send_text(frame[: max(1, len(frame) // 2)].decode(errors="ignore") + "}{,")
        if held is None and rng.random() < cfg.out_of_order_prob:
            held = frame  # sent after the next frame
            state.stats["out_of_order"] += 1
            continue
        await ws.send_text(frame.decode())
        if rng.random() < cfg.duplicate_prob:
            state.stats["duplicates"] += 1
            await ws.send_text(frame.decode())
        if held is not None:
            await ws.send_text(held.decode())
            held = None


async def _receiver(ws: WebSocket, conn: Connection, state: FakeBinanceState) -> None:
    """Handles SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS requests."""
    hub = state.hub
    while True:
        text = await ws.receive_text()
        try:
            req = msgspec.json.decode(text)
            method, rid = req["method"], req.get("id")
            params = req.get("params", [])
            if not isinstance(params, list):
                raise TypeError
        except (msgspec.DecodeError, KeyError, TypeError):
            await ws.send_text(
                '{"error":{"code":3,"msg":"Invalid JSON: expected {\\"method\\",\\"params\\",\\"id\\"}"}}'
            )
            continue
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            bad = [p for p in params if not isinstance(p, str) or not hub.valid(p)]
            if bad:
                reply = {"error": {"code": 2, "msg": f"Invalid request: invalid stream name(s) {bad}"}, "id": rid}
            else:
                for p in params:
                    (hub.subscribe if method == "SUBSCRIBE" else hub.unsubscribe)(conn, p)
                reply = {"result": None, "id": rid}
        elif method == "LIST_SUBSCRIPTIONS":
            reply = {"result": sorted(conn.streams), "id": rid}
        else:
            reply = {"error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"}, "id": rid}
        await ws.send_text(msgspec.json.encode(reply).decode())


async def _serve(ws: WebSocket, streams: list[str], combined: bool, state: FakeBinanceState) -> None:
    bad = [s for s in streams if not state.hub.valid(s)]
    await ws.accept()
    if bad:
        await ws.send_text(msgspec.json.encode({"error": {"code": 2, "msg": f"Invalid stream(s) {bad}"}}).decode())
        await ws.close(code=1008)
        return
    conn = state.hub.connect(combined, state.config.ws_queue_size)
    state.stats["connections"] += 1
    rng = random.Random(state.config.seed * 1_000_003 + conn.id)
    for s in streams:
        state.hub.subscribe(conn, s)
    await run_connection(state, conn, _sender(ws, conn, state, rng), _receiver(ws, conn, state))


async def run_connection(state: FakeBinanceState, conn: Connection, *halves: Coroutine[Any, Any, None]) -> None:
    """Run a connection's sending and receiving halves until one ends (the client left, or a fault dropped
    it), then stop the other and leave the hub. Shared by the market streams and the WebSocket API."""
    tasks = [asyncio.create_task(h) for h in halves]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            exc = t.exception()
            if exc is not None and not isinstance(exc, (WebSocketDisconnect, RuntimeError, OSError)):
                raise exc
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        state.hub.disconnect(conn)


def ws_routes(state: FakeBinanceState) -> list[WebSocketRoute]:
    async def raw(ws: WebSocket) -> None:
        path = ws.path_params.get("streams", "")
        await _serve(ws, [s for s in path.split("/") if s], combined=False, state=state)

    async def combined(ws: WebSocket) -> None:
        streams = ws.query_params.get("streams", "")
        await _serve(ws, [s for s in streams.split("/") if s], combined=True, state=state)

    return [WebSocketRoute("/ws", raw), WebSocketRoute("/ws/{streams:path}", raw), WebSocketRoute("/stream", combined)]
