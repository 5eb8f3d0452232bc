"""Offline demo: a fake Binance in this process replays bundled data; the real gateway reads it over real
WebSockets and REST, and the whole platform runs on top with simulated orders.

Why in-process (uvicorn on a free port in the same event loop): one process to start and stop with Ctrl-C
or SIGTERM, no child to orphan. The market time of the replay drives a SimClock through the gateway, so
orders and cycles carry market time, as with the replay service before.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog
import uvicorn

from roottrading.clock import SimClock
from roottrading.config import Settings
from roottrading.domain import Candle, interval_ms
from roottrading.exchange.fake_binance import FakeBinanceConfig, build_app

log = structlog.get_logger(__name__)


def demo_exchange_config(
    symbols: list[str], interval: str, candles_per_s: float = 20.0, history: int = 300
) -> FakeBinanceConfig:
    """The bundled real BTC day (relabelled for BTC* symbols) and a seeded synthetic market for the others,
    replayed at `candles_per_s` per symbol after `history` candles already closed (strategy warm-up)."""
    from roottrading.datasets.demo import demo_candles

    series: dict[str, list[Candle]] = {}
    for c in demo_candles(symbols, interval):
        series.setdefault(c.symbol, []).append(c)
    speed = candles_per_s * interval_ms(interval) / 1000.0 if candles_per_s > 0 else 0.0
    return FakeBinanceConfig(
        symbols=tuple(series),
        interval=interval,
        source="candles",
        candles=series,
        history_candles=history,
        speed=speed,
        updates_per_candle=4,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def fake_exchange(cfg: FakeBinanceConfig) -> AsyncIterator[str]:
    """Serve the fake exchange on a free local port; yields its base URL (http://127.0.0.1:<port>)."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(cfg),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            log_config=None,  # uvicorn's own lines go through our renderer (runtime/logsetup.py)
            ws_ping_interval=cfg.ws_ping_interval_s,
            ws_ping_timeout=cfg.ws_ping_interval_s * 3,
            lifespan="on",
        )
    )
    task = asyncio.create_task(server.serve(), name="fake-binance")
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("fake Binance exited before starting")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


DEMO_SIGNAL_DELAY_S = 5.0


def demo_max_signal_age_s(interval: str, candles_per_s: float, default_s: float = 300.0) -> float:
    """The coordinator's stale-signal limit for a replay: market time runs `candles_per_s` intervals per wall
    second, so a few wall seconds of delay on a busy machine are hours of market time. Scaled so that a signal
    up to DEMO_SIGNAL_DELAY_S wall seconds late still trades (the warm-up backlog still does not)."""
    scaled = DEMO_SIGNAL_DELAY_S * candles_per_s * interval_ms(interval) / 1000.0
    return max(default_s, scaled)


async def run_demo(
    settings: Settings,
    *,
    port: int | None = None,
    candles_per_s: float = 20.0,
    services: list[str] | None = None,
    on_ready: Callable[[Any], None] | None = None,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Start the demo on a fresh demo database (the previous one moved aside, see demo_db), then the fake
    exchange, then serve the platform against it until SIGINT/SIGTERM. `announce` receives the one line that
    says which database the run uses (default: the log). Raises DemoDatabaseError before starting anything
    when the configured database cannot be reset safely."""
    from roottrading.services.gateway.demo_db import demo_database_lock, demo_database_url, fresh_demo_database

    url = demo_database_url(settings)
    with demo_database_lock(url):
        line = fresh_demo_database(url)
        if announce is not None:
            announce(line)
        else:
            log.info(line)
        await _serve_demo(settings.model_copy(update={"database_url": url}), port, candles_per_s, services, on_ready)


async def _serve_demo(
    settings: Settings,
    port: int | None,
    candles_per_s: float,
    services: list[str] | None,
    on_ready: Callable[[Any], None] | None,
) -> None:
    from roottrading.runtime import Host, Wiring

    cfg = demo_exchange_config(settings.symbols, settings.interval, candles_per_s)
    async with fake_exchange(cfg) as base:
        log.info("demo exchange ready", url=base, symbols=list(cfg.symbols), candles_per_s=candles_per_s)
        settings = settings.model_copy(
            update={"binance_rest_url": base, "binance_ws_url": base.replace("http://", "ws://")}
        )
        host = Host(
            settings,
            services,
            clock=SimClock(),
            wiring=Wiring(
                gateway={"warmup_candles": 1000, "stale_after_s": 5.0, "backoff_max_s": 5.0},
                coordinator={"max_signal_age_s": demo_max_signal_age_s(settings.interval, candles_per_s)},
            ),
        )
        if on_ready is not None:
            on_ready(host)
        await host.serve(port=port)
