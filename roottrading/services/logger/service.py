"""Logger service (reference port 5005): stores every service's log lines from the bus in event_logs.

Writes are idempotent on the bus message id, so a redelivered line is stored once.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from roottrading import messages as m
from roottrading.runtime.params import epoch_ms
from roottrading.runtime.service import Consumes, HealthStatus, Service
from roottrading.store import EventLogRepo


class LoggerService(Service):
    name = "logger"
    description = "Collects logs from the bus into event_logs and serves queries over them."

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.repo = EventLogRepo(ctx.db)
        self.stored = 0

    def consumes(self) -> list[Consumes]:
        return [Consumes(m.logs_topic(level), self.on_log) for level in m.LOG_LEVELS]

    async def on_log(self, msg: m.Message) -> None:
        rec: m.LogRecord = msg.payload
        self.stored += await self.repo.add_many(
            [
                {
                    "message_id": msg.id,
                    "time": rec.time,
                    "level": rec.level,
                    "service": rec.service,
                    "event": rec.event,
                    "context": rec.context,
                }
            ]
        )

    def router(self) -> APIRouter:
        r = APIRouter()

        @r.get("/logs")
        async def logs(
            level: str | None = None,
            service: str | None = None,
            since: int | None = epoch_ms("epoch ms: entries at or after"),
            q: str | None = None,
            limit: int = Query(200, ge=1, le=5000),
        ) -> list[dict[str, Any]]:
            """Search event_logs: level, service, since (epoch ms), free text `q`; newest first."""
            return await self.repo.query(level=level, service=service, since=since, q=q, limit=limit)

        return r

    async def health(self) -> HealthStatus:
        return HealthStatus(details={"stored": self.stored})
