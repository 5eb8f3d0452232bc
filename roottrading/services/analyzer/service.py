"""Analyzer service (reference port 5001), first version: consumes closed candles per symbol, keeps a
rolling window, evaluates a trivial moving-average cross and publishes/stores Signals.

The full strategy engine (roottrading.strategies, parallel workers, regimes) replaces `_evaluate`.
"""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Any

from fastapi import APIRouter, Query

from roottrading import ids
from roottrading import messages as m
from roottrading.domain import Candle, Side, Signal, SignalStrength
from roottrading.runtime.service import Consumes, HealthStatus, Service
from roottrading.store import SignalRepo

FAST, SLOW = 5, 20


class AnalyzerService(Service):
    name = "analyzer"
    description = "Runs strategies on candles and publishes signals."

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.windows: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=SLOW + 1))
        self.last_open: dict[str, int] = {}
        self.repo = SignalRepo(ctx.db)
        self.candles_seen = 0
        self.signals_sent = 0

    def consumes(self) -> list[Consumes]:
        return [Consumes(m.candles_topic(s), self.on_candle) for s in self.ctx.settings.symbols]

    async def on_candle(self, msg: m.Message) -> None:
        c: Candle = msg.payload
        if not c.closed or c.open_time <= self.last_open.get(c.symbol, -1):
            return  # in-progress bar or a redelivery: nothing new to evaluate
        self.last_open[c.symbol] = c.open_time
        self.candles_seen += 1
        w = self.windows[c.symbol]
        w.append(c.close)
        signal = self._evaluate(c, w)
        if signal is not None and await self.repo.add(signal):
            await self.ctx.publish(m.SIGNALS, signal, key=signal.symbol, msg_id=signal.id)
            self.signals_sent += 1

    def _evaluate(self, c: Candle, w: deque[float]) -> Signal | None:
        if len(w) < SLOW + 1:
            return None
        closes = list(w)
        fast_now, slow_now = sum(closes[-FAST:]) / FAST, sum(closes[-SLOW:]) / SLOW
        fast_prev, slow_prev = sum(closes[-FAST - 1:-1]) / FAST, sum(closes[-SLOW - 1:-1]) / SLOW
        if fast_prev <= slow_prev and fast_now > slow_now:
            side = Side.BUY
        elif fast_prev >= slow_prev and fast_now < slow_now:
            side = Side.SELL
        else:
            return None
        return Signal(id=ids.signal_id("sma_cross", c.symbol, c.interval, c.open_time), time=c.close_time,
                      symbol=c.symbol, strategy="sma_cross", side=side, strength=SignalStrength.MODERATE,
                      price=c.close, interval=c.interval)

    def router(self) -> APIRouter:
        r = APIRouter()

        @r.get("/health")
        async def health() -> dict[str, Any]:
            h = await self.health()
            return {"status": h.status, **h.details}

        @r.get("/signals")
        async def signals(symbol: str | None = None, strategy: str | None = None,
                          limit: int = Query(50, ge=1, le=1000)) -> list[dict[str, Any]]:
            return [m.to_builtins(s) for s in await self.repo.query(symbol=symbol, strategy=strategy, limit=limit)]

        return r

    async def health(self) -> HealthStatus:
        return HealthStatus(details={"candles": self.candles_seen, "signals": self.signals_sent})
