"""Assembles the fake Binance ASGI app. Other modules (e.g. the trading side) plug in through
`extensions`: each is called with the shared `FakeBinanceState` and returns extra routes; it may also
register request weights (`state.limiter.route_weights`), WebSocket stream validators
(`state.hub.validators`) and market listeners (`state.market.listeners`)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from roottrading.exchange.fake_binance.config import FakeBinanceConfig
from roottrading.exchange.fake_binance.futures import futures_routes
from roottrading.exchange.fake_binance.hub import Hub
from roottrading.exchange.fake_binance.limits import WeightLimiter, WeightMiddleware
from roottrading.exchange.fake_binance.market import Market
from roottrading.exchange.fake_binance.rest import market_routes
from roottrading.exchange.fake_binance.tickers import ticker_routes
from roottrading.exchange.fake_binance.wsapi import market_stream_validator, ws_routes

log = structlog.get_logger(__name__)


@dataclass
class FakeBinanceState:
    """Everything the routes share; reachable from a request as `request.app.state.fake`."""

    config: FakeBinanceConfig
    hub: Hub
    market: Market
    limiter: WeightLimiter
    rng: random.Random
    stats: Counter[str] = field(default_factory=Counter)
    replay_task: asyncio.Task[None] | None = None


Extension = Callable[[FakeBinanceState], Sequence[BaseRoute]]


def build_app(config: FakeBinanceConfig | None = None, extensions: Sequence[Extension] = ()) -> Starlette:
    """The ASGI app. The replay starts with the app's lifespan (uvicorn, or httpx/TestClient lifespan)."""
    cfg = config or FakeBinanceConfig()
    cfg.validate()
    hub = Hub()
    market = Market(cfg, hub)
    rng = random.Random(cfg.seed)
    state = FakeBinanceState(cfg, hub, market, WeightLimiter(cfg, random.Random(cfg.seed + 1)), rng)
    hub.validators.append(market_stream_validator({s.lower() for s in market.series}))
    routes: list[BaseRoute] = [*market_routes(state), *ticker_routes(state), *futures_routes(state), *ws_routes(state)]
    for ext in extensions:
        routes.extend(ext(state))

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        state.replay_task = asyncio.create_task(market.run(), name="fake-binance-replay")
        log.info("fake_binance.started", symbols=list(market.series), interval=cfg.interval, speed=cfg.speed)
        try:
            yield
        finally:
            state.replay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await state.replay_task

    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(WeightMiddleware, limiter=state.limiter)])
    app.state.fake = state
    return app


def run(
    host: str = "127.0.0.1",
    port: int = 9000,
    config: FakeBinanceConfig | None = None,
    extensions: Sequence[Extension] = (),
) -> None:
    """Serve with uvicorn (blocking). Protocol-level pings every `ws_ping_interval_s`, like Binance."""
    import uvicorn

    cfg = config or FakeBinanceConfig()
    uvicorn.run(
        build_app(cfg, extensions),
        host=host,
        port=port,
        log_level="warning",
        ws_ping_interval=cfg.ws_ping_interval_s,
        ws_ping_timeout=cfg.ws_ping_interval_s * 3,
    )
