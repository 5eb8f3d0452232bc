"""The Service base class: a unit of deployment, not of code.

A service declares what it consumes (topic + handler), its REST routes, its periodic jobs and its health.
The Host decides where it runs: all services in one process on the memory bus, or one per process on Redis.
A service never knows which: it only talks to `self.ctx` (bus, database, clock, settings, exchange).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import structlog
from fastapi import APIRouter

from roottrading.bus.base import Handler

if TYPE_CHECKING:
    from roottrading.runtime.context import Context


@dataclass(frozen=True)
class Consumes:
    """Subscribe `handler` to `topic`; `group` defaults to the service name (one delivery per service).

    `broadcast`: EVERY instance of the service receives every message (control events, prices), through a group
    of its own (runtime/instance.py) created at the newest entry: the instance's state at start comes from the
    store, not from a replayed history. On a one-process bus it is the plain group."""

    topic: str
    handler: Handler
    group: str | None = None
    broadcast: bool = False


@dataclass(frozen=True)
class Job:
    """A periodic coroutine. Errors are logged and the job runs again next period."""

    name: str
    interval_s: float
    fn: Callable[[], Awaitable[object]]  # the result is not used
    run_at_start: bool = False


@dataclass
class HealthStatus:
    status: str = "ok"  # ok, degraded, down
    details: dict[str, Any] = field(default_factory=dict)


class Service:
    name: ClassVar[str] = "service"
    description: ClassVar[str] = ""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.log = structlog.get_logger(f"roottrading.{self.name}").bind(service=self.name)

    def consumes(self) -> list[Consumes]:
        return []

    def router(self) -> APIRouter | None:
        return None

    def jobs(self) -> list[Job]:
        return []

    async def start(self) -> None:
        """Prepare state (load from the store, reconcile) before consumers are subscribed."""

    async def stop(self) -> None:
        """Release resources after intake has stopped and in-flight messages are done."""

    async def health(self) -> HealthStatus:
        return HealthStatus()
