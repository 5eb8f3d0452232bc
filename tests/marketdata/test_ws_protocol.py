"""Fake server WS protocol (raw stream, SUBSCRIBE/LIST/UNSUBSCRIBE, bad streams) and client lifecycle."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import websockets

from roottrading.domain import Candle, Tick
from roottrading.exchange.binance.parse import parse_ws_message
from roottrading.exchange.binance.ws import BinanceStreamClient, ConnectionState
from roottrading.exchange.fake_binance import FakeBinanceConfig, build_app

from .helpers import free_port, serve


async def _until(cond: Callable[[], bool], timeout: float) -> None:
    """Wait for a condition instead of sleeping a guessed time (slow machines, noisy CI)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


CFG = {"symbols": ("BTCUSDT",), "synthetic_count": 400, "history_candles": 10, "speed": 600, "updates_per_candle": 3}


async def test_raw_stream_and_subscribe_methods() -> None:
    async with serve(build_app(FakeBinanceConfig(**CFG))) as base:
        ws_base = base.replace("http", "ws")
        async with websockets.connect(f"{ws_base}/ws/btcusdt@kline_1m") as ws:
            ev = parse_ws_message(await asyncio.wait_for(ws.recv(), 5))
            assert isinstance(ev, Candle) and ev.symbol == "BTCUSDT"  # raw payload, no wrapper
        async with websockets.connect(f"{ws_base}/ws") as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 7}))
            assert json.loads(await ws.recv()) == {"result": None, "id": 7}
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 8}))
            replies = [json.loads(await ws.recv()) for _ in range(5)]
            assert {"result": ["btcusdt@trade"], "id": 8} in replies
            assert any(r.get("e") == "trade" for r in replies)
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["nope@trade"], "id": 9}))
            for _ in range(50):
                r = json.loads(await ws.recv())
                if r.get("id") == 9:
                    assert r["error"]["code"] == 2
                    break
            else:
                raise AssertionError("no error reply for an invalid stream")
        async with websockets.connect(f"{ws_base}/stream?streams=xxx@kline_1m") as ws:
            assert "Invalid stream" in await ws.recv()


async def test_client_scheduled_reconnect_calls_on_connected_each_time() -> None:
    connects = 0
    events: list[Candle | Tick] = []

    async def on_connected() -> None:
        nonlocal connects
        connects += 1

    async def on_event(ev: Candle | Tick) -> None:
        events.append(ev)

    async with serve(build_app(FakeBinanceConfig(**CFG))) as base:
        client = BinanceStreamClient(
            ["BTCUSDT"],
            "1m",
            on_event=on_event,
            on_connected=on_connected,
            base_url=base.replace("http", "ws"),
            trades="trade",
            book_ticker=True,
            max_connection_age_s=0.3,
            stale_after_s=2,
        )
        task = asyncio.create_task(client.run())
        await _until(
            lambda: (
                client.stats()["scheduled"] >= 2
                and connects >= 3
                and client.stats()["streams"]["btcusdt@trade"]["messages"] > 0
                and any(isinstance(e, Tick) and e.bid is not None for e in events)
                and any(isinstance(e, Candle) and not e.closed for e in events)
            ),
            timeout=15,
        )
        stats = client.stats()
        await client.stop()
        await asyncio.wait_for(task, 5)
    assert stats["scheduled"] >= 2 and connects >= 3 and stats["errors"] == 0
    assert any(isinstance(e, Tick) and e.bid is not None for e in events)
    assert any(isinstance(e, Tick) and e.trade_id is not None for e in events)
    assert any(isinstance(e, Candle) and not e.closed for e in events)
    assert stats["streams"]["btcusdt@trade"]["messages"] > 0


async def test_client_backs_off_with_jitter_when_server_is_down() -> None:
    async def never(_: Candle | Tick) -> None:
        raise AssertionError

    client = BinanceStreamClient(
        ["BTCUSDT"],
        "1m",
        on_event=never,
        base_url=f"ws://127.0.0.1:{free_port()}",
        backoff_initial_s=0.02,
        backoff_max_s=0.1,
        open_timeout_s=0.5,
        seed=1,
    )
    task = asyncio.create_task(client.run())
    await _until(lambda: client.reconnects >= 3, timeout=10)
    states = client.state
    await client.stop()
    await asyncio.wait_for(task, 2)
    assert client.reconnects >= 3 and client.counters["errors"] == client.reconnects
    assert states in (ConnectionState.BACKOFF, ConnectionState.CONNECTING)
    assert client.state is ConnectionState.STOPPED and "ConnectionRefused" in (client.last_error or "")
