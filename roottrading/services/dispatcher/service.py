"""Dispatcher service (reference port 5004): routes and transforms messages between brokers.

Routes come from `ctx.wiring.dispatcher_routes` (a dict, YAML text, a RoutesConfig or a path), else the file
named by the DISPATCHER_ROUTES environment variable, else DATA_DIR/dispatcher/routes.yaml when it exists; with
none, the service runs with no routes (and says so in /health). See routes.py for the format and forwarder.py for
the delivery guarantees. `GET /stats` gives per-route counters, `GET /health` the overall state.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import APIRouter

from roottrading.runtime.service import Consumes, HealthStatus, Service
from roottrading.services.dispatcher.forwarder import Dispatcher
from roottrading.services.dispatcher.routes import RoutesConfig, load_routes


class DispatcherService(Service):
    name = "dispatcher"
    description = "Routes/transforms messages between bus backends; spills to disk while a target is down."

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.config, self.config_source = self._load_config()
        self.engine = Dispatcher(
            self.config,
            data_dir=Path(ctx.settings.data_dir),
            symbols=list(ctx.settings.symbols),
            source=ctx.bus,
            targets=dict(ctx.wiring.dispatcher_targets) if ctx.wiring.dispatcher_targets else None,
        )

    def _load_config(self) -> tuple[RoutesConfig, str]:
        spec = self.ctx.wiring.dispatcher_routes
        if spec is not None:
            return load_routes(spec), "wiring"
        env = os.environ.get("DISPATCHER_ROUTES")
        if env:
            return load_routes(Path(env)), env
        default = Path(self.ctx.settings.data_dir) / "dispatcher" / "routes.yaml"
        if default.exists():
            return load_routes(default), str(default)
        return RoutesConfig(), "none"

    def consumes(self) -> list[Consumes]:
        if self.engine.own_source:
            return []  # the engine subscribes on its own source bus
        return [Consumes(topic, handler, group) for topic, group, handler in self.engine.subscriptions()]

    async def start(self) -> None:
        await self.engine.start()

    async def stop(self) -> None:
        await self.engine.stop()

    def router(self) -> APIRouter:
        r = APIRouter()

        @r.get("/stats")
        async def stats() -> dict[str, Any]:
            """Per route: forwarded, buffered (in memory), pending, spilled (to disk), failed, dropped, last
            error, lag (ms from the message's timestamp to its forward, or of the oldest pending one)."""
            return self.engine.stats()

        return r

    async def health(self) -> HealthStatus:
        routes = self.engine.stats()["routes"]
        down = sorted(n for n, r in routes.items() if not r["target_up"])
        status = "degraded" if down else "ok"
        return HealthStatus(
            status=status,
            details={
                "routes": len(routes),
                "config": self.config_source,
                "targets_down": down,
                "pending": {n: r["pending"] for n, r in routes.items() if r["pending"]},
            },
        )
