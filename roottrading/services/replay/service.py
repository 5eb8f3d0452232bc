"""Replay service: publishes recorded candles on `market.candles.<SYMBOL>` as a market-data source.

A stand-in for the gateway when no exchange is reachable and the source of history replays. Candles are
published with their natural key as message id, so replaying twice never duplicates anything downstream.
Source: `ctx.wiring.replay_candles` (a list of Candle, used by tests and backtests), else the bundled
dataset (`roottrading.datasets`). `speed` (REPLAY_SPEED) candles per second (0 = as fast as possible).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter

from roottrading import messages as m
from roottrading.clock import SimClock
from roottrading.datasets.demo import demo_candles
from roottrading.domain import Candle
from roottrading.runtime.service import HealthStatus, Service


class ReplayService(Service):
    name = "replay"
    description = "Replays recorded candles onto the bus."

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.published = 0
        self.total = 0
        self.speed: float = ctx.settings.replay_speed
        self._task: asyncio.Task[None] | None = None
        self.done = asyncio.Event()

    def _source(self) -> list[Candle]:
        given = self.ctx.wiring.replay_candles
        if given is not None:
            return list(given)
        return demo_candles(self.ctx.settings.symbols, self.ctx.settings.interval, n=1440)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="replay")

    async def _run(self) -> None:
        candles = self._source()
        self.total = len(candles)
        self.log.info("replay started", candles=self.total, speed=self.speed)
        sim = self.ctx.clock if isinstance(self.ctx.clock, SimClock) else None
        for c in candles:
            if sim is not None and c.close_time > sim.now_ms():
                sim.set(c.close_time)  # market time drives the platform's clock during a replay
            await self.ctx.publish(m.candles_topic(c.symbol), c, key=c.symbol, msg_id=c.key)
            self.published += 1
            if self.speed > 0:
                await asyncio.sleep(1.0 / self.speed)
        self.done.set()
        self.log.info("replay finished", candles=self.published)

    async def stop(self) -> None:
        if self._task and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def router(self) -> APIRouter:
        r = APIRouter()

        return r

    async def health(self) -> HealthStatus:
        return HealthStatus(details={"published": self.published, "total": self.total})
