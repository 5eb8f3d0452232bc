"""Stream service: pushes bus events to browsers over a WebSocket (`/api/stream/ws`), no polling.

Each client gets a bounded queue; a slow client loses its oldest events (and is told how many) rather than
slowing the platform. Frames are JSON: {"topic", "key", "id", "ts", "data"}.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from roottrading import messages as m
from roottrading.runtime.service import Consumes, HealthStatus, Service

LIVE_TOPICS = [
    m.SIGNALS,
    m.ORDER_UPDATES,
    m.TRADE_EXECUTIONS,
    m.CYCLE_UPDATES,
    m.PORTFOLIO_BALANCES,
    m.RISK_EVENTS,
    m.SYSTEM_HEALTH,
    m.BACKTEST_PROGRESS,
    m.UNIVERSE_CHANGED,
]
CLIENT_QUEUE = 1000


class StreamService(Service):
    name = "stream"
    description = "Live events for the dashboard over WebSocket."

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.clients: set[asyncio.Queue[dict[str, Any]]] = set()
        self.sent = 0

    def consumes(self) -> list[Consumes]:
        topics = LIVE_TOPICS + [m.candles_topic(s) for s in self.ctx.settings.symbols]
        # a group per process: every dashboard server sees every event
        return [Consumes(t, self.on_event, group=f"stream-{id(self)}") for t in topics]

    async def on_event(self, msg: m.Message) -> None:
        if not self.clients:
            return
        frame = {"topic": msg.topic, "key": msg.key, "id": msg.id, "ts": msg.ts, "data": m.to_builtins(msg.payload)}
        for q in list(self.clients):
            if q.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
            q.put_nowait(frame)

    def router(self) -> APIRouter:
        r = APIRouter()

        @r.websocket("/ws")
        async def ws(socket: WebSocket) -> None:
            await socket.accept()
            q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(CLIENT_QUEUE)
            self.clients.add(q)
            try:
                await socket.send_json({"topic": "hello", "data": {"topics": LIVE_TOPICS}})
                while True:
                    frame = await q.get()
                    await socket.send_json(frame)
                    self.sent += 1
            except (WebSocketDisconnect, RuntimeError):
                pass
            finally:
                self.clients.discard(q)

        return r

    async def health(self) -> HealthStatus:
        return HealthStatus(details={"clients": len(self.clients), "sent": self.sent})
