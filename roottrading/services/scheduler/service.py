"""Scheduler service (reference port 5008): periodic jobs and the global health report.

Every `interval` it checks each service hosted here, the bus and the database (and, in per-service mode,
the other services over HTTP on their reference ports), then publishes a HealthReport on `system.health`.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter

from roottrading import messages as m
from roottrading.config import SERVICE_PORTS
from roottrading.runtime.service import HealthStatus, Job, Service

HEALTH_INTERVAL_S = 10.0


class SchedulerService(Service):
    name = "scheduler"
    description = "Runs periodic jobs and publishes a global health report."

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.last_report: m.HealthReport | None = None
        self.runs = 0

    def jobs(self) -> list[Job]:
        return [Job("health-check", HEALTH_INTERVAL_S, self.check_health, run_at_start=True)]

    async def check_health(self) -> m.HealthReport:
        components: dict[str, dict[str, Any]] = {}
        for name, svc in self.ctx.services.items():
            if svc is self:
                continue
            h = await svc.health()
            components[name] = {"status": h.status, **h.details}
        components["bus"] = await self.ctx.bus.health()
        try:
            components["database"] = {"status": "ok" if await self.ctx.db.ping() else "down"}
        except (ConnectionError, OSError) as exc:
            components["database"] = {"status": "down", "error": repr(exc)}
        remote = [n for n in SERVICE_PORTS if n not in self.ctx.services and self.ctx.settings.scheduler_check_remote]
        async with httpx.AsyncClient(timeout=2.0) as client:
            for name in remote:
                port = self.ctx.settings.service_ports.get(name, SERVICE_PORTS[name])
                try:
                    resp = await client.get(f"http://127.0.0.1:{port}/health")
                    components[name] = {"status": "ok" if resp.status_code == 200 else "degraded"}
                except httpx.HTTPError as exc:
                    components[name] = {"status": "down", "error": type(exc).__name__}
        bad = {n for n, c in components.items() if c.get("status") != "ok"}
        status = "down" if bad & {"bus", "database"} else "degraded" if bad else "ok"
        report = m.HealthReport(time=self.ctx.clock.now_ms(), status=status, components=components)
        self.last_report = report
        self.runs += 1
        await self.ctx.publish(m.SYSTEM_HEALTH, report, key="scheduler")
        if bad:
            self.log.warning("health degraded", components=sorted(bad))
        return report

    def router(self) -> APIRouter:
        r = APIRouter()

        @r.get("/report")
        async def report() -> dict[str, Any]:
            """The latest global health report (computed now if none yet)."""
            rep = self.last_report or await self.check_health()
            return m.to_builtins(rep)

        return r

    async def health(self) -> HealthStatus:
        return HealthStatus(details={"runs": self.runs})
