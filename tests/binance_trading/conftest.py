"""A real fake-Binance server (uvicorn on a free port, in the test's event loop) and a BinanceExchange on it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn

from roottrading.exchange.binance.adapter import BinanceExchange
from roottrading.exchange.fake_binance import FakeBinanceConfig, build_app
from roottrading.exchange.fake_binance.trading import trading_extension

API_KEY = "k" * 64
API_SECRET = "s" * 64


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    ws_url: str
    state: Any  # FakeBinanceState; .trading is the TradingAccount

    def exchange(self, **kw: Any) -> BinanceExchange:
        kw.setdefault("timeout_s", 5.0)
        return BinanceExchange(API_KEY, API_SECRET, base_url=self.url, ws_url=self.ws_url, **kw)


@contextlib.asynccontextmanager
async def run_server(**overrides: Any) -> AsyncIterator[Server]:
    cfg = FakeBinanceConfig(
        **{
            "symbols": ("BTCUSDT",),
            "synthetic_count": 3000,
            "speed": 600.0,
            "api_key": API_KEY,
            "api_secret": API_SECRET,
            **overrides,
        }
    )
    app = build_app(cfg, [trading_extension])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    try:
        yield Server(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", app.state.fake)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.fixture
def fake_binance() -> Callable[..., contextlib.AbstractAsyncContextManager[Server]]:
    """`async with fake_binance(**config_overrides) as srv:`"""
    return run_server
