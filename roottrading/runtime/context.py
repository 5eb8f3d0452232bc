"""What a service can reach: settings, bus, database, clock, its peers (one-process mode), injected objects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from roottrading.bus.base import MessageBus
from roottrading.clock import Clock
from roottrading.config import Settings
from roottrading.runtime.wiring import Wiring
from roottrading.store import Database

if TYPE_CHECKING:
    from roottrading.runtime.service import Service


@dataclass
class Context:
    settings: Settings
    bus: MessageBus
    db: Database
    clock: Clock
    services: dict[str, Service] = field(default_factory=dict)
    # objects injected instead of built by the services (tests, backtests, the demo); tuning is in settings
    wiring: Wiring = field(default_factory=Wiring)
    # sees every publish before the bus (runtime/metrics.py: pipeline latencies); None: no metrics
    tap: Callable[[str, Any, int], None] | None = None
    # routes served at the root (one service per process) rather than under /api/<service>: a route whose
    # path would be empty under its prefix (`GET /api/universe`) is `/` there
    per_service_http: bool = False

    async def publish(self, topic: str, payload: Any, *, key: str | None = None, msg_id: str | None = None) -> str:
        ts = self.clock.now_ms()
        if self.tap is not None:
            self.tap(topic, payload, ts)
        return await self.bus.publish(topic, payload, key=key, msg_id=msg_id, ts=ts)

    def peer(self, name: str) -> Service | None:
        """A service hosted in the same process, if any (never required: the bus is the contract)."""
        return self.services.get(name)
