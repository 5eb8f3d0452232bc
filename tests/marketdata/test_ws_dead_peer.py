"""A peer that accepts the WebSocket and then goes silent: no frames, no pongs, no closing handshake.
The stream client must notice (stale watchdog, or no pong) and reconnect at once, without waiting for a
closing handshake that never comes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator

from aiohttp import web

from roottrading.domain import Candle, Tick
from roottrading.exchange.binance.ws import BinanceStreamClient


@contextlib.asynccontextmanager
async def silent_peer(accept_after_s: float = 0.0) -> AsyncIterator[tuple[str, list[float]]]:
    """Yields (ws base URL, connection times). Each connection is accepted (after `accept_after_s`) and then
    never served."""
    connected: list[float] = []
    hang = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)  # it never reads, so pings and close frames go unanswered
        await asyncio.sleep(accept_after_s)
        await ws.prepare(request)
        connected.append(time.monotonic())
        await hang.wait()
        return ws

    app = web.Application()
    app.router.add_get("/stream", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"ws://127.0.0.1:{port}", connected
    finally:
        hang.set()
        await runner.cleanup()


async def _never(_: Candle | Tick) -> None:
    raise AssertionError("the silent peer sent an event")


async def _run_for(client: BinanceStreamClient, seconds: float) -> None:
    task = asyncio.create_task(client.run())
    await asyncio.sleep(seconds)
    await asyncio.wait_for(client.stop(), 3)
    await asyncio.wait_for(task, 3)


async def test_stale_feed_is_dropped_without_waiting_for_a_closing_handshake() -> None:
    async with silent_peer() as (base, connected):
        client = BinanceStreamClient(
            ["BTCUSDT"],
            "1m",
            on_event=_never,
            base_url=base,
            stale_after_s=0.2,
            ping_interval_s=None,
            close_timeout_s=5.0,
            backoff_initial_s=0.01,
            backoff_max_s=0.02,
            seed=1,
        )
        await _run_for(client, 1.5)
    # a graceful close would wait close_timeout_s (5 s) for the peer's answer each time
    assert client.counters["stale"] >= 3 and len(connected) >= 4
    assert max(b - a for a, b in itertools.pairwise(connected)) < 0.6


async def test_a_peer_that_does_not_answer_pings_is_dropped() -> None:
    async with silent_peer() as (base, connected):
        client = BinanceStreamClient(
            ["BTCUSDT"],
            "1m",
            on_event=_never,
            base_url=base,
            stale_after_s=30,
            ping_interval_s=0.2,
            backoff_initial_s=0.01,
            backoff_max_s=0.02,
            seed=1,
        )
        await _run_for(client, 1.5)
    assert client.counters["stale"] == 0  # the watchdog did not fire: the missing pong did
    assert len(connected) >= 3 and client.counters["errors"] >= 2
    assert "PONG" in (client.last_error or ""), client.last_error


async def test_a_stop_while_connecting_does_not_wait_for_a_closing_handshake() -> None:
    """stop() while the opening handshake is under way finds no connection to close; the connection that
    opens right after must be dropped, not closed gracefully (which waits close_timeout_s for a silent
    peer: CI saw run() outlive the test's 3 s bound)."""
    async with silent_peer(accept_after_s=0.3) as (base, connected):
        client = BinanceStreamClient(
            ["BTCUSDT"], "1m", on_event=_never, base_url=base, ping_interval_s=None, close_timeout_s=5.0, seed=1
        )
        task = asyncio.create_task(client.run())
        while client.state.name != "CONNECTING":
            await asyncio.sleep(0.005)
        t0 = time.monotonic()
        await client.stop()  # during the opening handshake: nothing to close yet
        await asyncio.wait_for(task, 3)
        assert time.monotonic() - t0 < 2.0
    assert len(connected) <= 1
