"""Replay service: publishes recorded candles on `market.candles.<SYMBOL>` as a market-data source.

A stand-in for the gateway when no exchange is reachable and the source of history replays. Candles are
published with their natural key as message id, so replaying twice never duplicates anything downstream.
Source: `ctx.extras["replay_candles"]` (a list of Candle, used by tests and backtests), else the bundled
dataset (`roottrading.datasets`). `speed` candles per second (0 = as fast as possible).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from roottrading import messages as m
from roottrading.domain import Candle
from roottrading.runtime.service import HealthStatus, Service


class ReplayService(Service):
    name = "replay"
    description = "Replays recorded candles onto the bus."

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.published = 0
        self.total = 0
        self.speed: float = float(ctx.extras.get("replay_speed", 20.0))
        self._task: asyncio.Task[None] | None = None
        self.done = asyncio.Event()

    def _source(self) -> list[Candle]:
        given = self.ctx.extras.get("replay_candles")
        if given is not None:
            return list(given)
        from roottrading.datasets import load_candles  # bundled, licence-clean data

        out: list[Candle] = []
        for symbol in self.ctx.settings.symbols:
            out.extend(load_candles(symbol, self.ctx.settings.interval))
        return sorted(out, key=lambda c: (c.close_time, c.symbol))

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="replay")

    async def _run(self) -> None:
        candles = self._source()
        self.total = len(candles)
        self.log.info("replay started", candles=self.total, speed=self.speed)
        for c in candles:
            await self.ctx.publish(m.candles_topic(c.symbol), c, key=c.symbol, msg_id=c.key)
            self.published += 1
            if self.speed > 0:
                await asyncio.sleep(1.0 / self.speed)
        self.done.set()
        self.log.info("replay finished", candles=self.published)

    async def stop(self) -> None:
        if self._task and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def router(self) -> APIRouter:
        r = APIRouter()

        @r.get("/health")
        async def health() -> dict[str, Any]:
            return {"status": "ok", "published": self.published, "total": self.total}

        return r

    async def health(self) -> HealthStatus:
        return HealthStatus(details={"published": self.published, "total": self.total})
