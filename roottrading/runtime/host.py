"""Hosts any subset of services in one process: bus, database, clock, lifecycle, HTTP, health.

Start order: bus -> database (migrated) -> services' start() -> subscriptions -> jobs -> HTTP.
Stop order (SIGINT/SIGTERM): HTTP stops taking requests -> subscriptions stop (intake ends; in-flight
handlers finish and acknowledge) -> jobs cancelled -> services' stop() -> bus and database closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import signal
from collections.abc import Awaitable
from typing import Any

import structlog
import uvicorn

from roottrading import messages as m
from roottrading.bus import create_bus
from roottrading.bus.base import MessageBus, Subscription
from roottrading.clock import Clock, LiveClock
from roottrading.config import Settings
from roottrading.messages import Message
from roottrading.runtime.context import Context
from roottrading.runtime.heap import settle_heap
from roottrading.runtime.instance import broadcast_group, instance_name
from roottrading.runtime.logsetup import SINK
from roottrading.runtime.metrics import Metrics
from roottrading.runtime.registry import DEFAULT_ORDER, load_service
from roottrading.runtime.service import Consumes, Job, Service
from roottrading.runtime.wiring import Wiring
from roottrading.store import Database

log = structlog.get_logger("roottrading.host")
#: a step of Host.stop() (bus close, a job, a service) that takes longer is cancelled, with a log of every task
STOP_STEP_S = 20.0


class Host:
    def __init__(
        self,
        settings: Settings,
        service_names: list[str] | None = None,
        *,
        bus: MessageBus | None = None,
        db: Database | None = None,
        clock: Clock | None = None,
        per_service_http: bool = False,
        wiring: Wiring | None = None,
    ) -> None:
        self.settings = settings
        names = service_names or DEFAULT_ORDER
        self.names = sorted(names, key=lambda n: DEFAULT_ORDER.index(n) if n in DEFAULT_ORDER else len(DEFAULT_ORDER))
        if bus is None:
            kw = {"prefix": settings.bus_prefix} if settings.bus_url.startswith(("redis", "rediss", "nats")) else {}
            bus = create_bus(settings.bus_url, **kw)
        self.bus = bus
        self.db = db or Database(settings.database_url, durable=settings.trading_mode == "live")
        self.clock = clock or LiveClock()
        self.per_service_http = per_service_http
        self.api_token, self.token_created = settings.ensure_api_token()
        self.ctx = Context(
            settings=settings,
            bus=self.bus,
            db=self.db,
            clock=self.clock,
            wiring=wiring or Wiring(),
            per_service_http=per_service_http,
        )
        # Services are built here (no I/O in their constructors) so routes exist before start().
        self.services: dict[str, Service] = {name: load_service(name)(self.ctx) for name in self.names}
        self.ctx.services = self.services
        self.metrics: Metrics | None = Metrics(self) if settings.metrics_enabled else None
        if self.metrics is not None:
            self.ctx.tap = self.metrics.on_publish
        self._subs: list[Subscription] = []
        self._by_key: dict[tuple[str, str, str], Subscription] = {}  # (service, topic, group)
        self._jobs: list[asyncio.Task[None]] = []
        self._server: uvicorn.Server | None = None
        self.started = False
        self.instance: str | None = None  # names this process's broadcast groups (runtime/instance.py)

    async def start(self) -> None:
        await self.bus.start()
        await self.db.migrate()
        SINK.attach(self.bus, self.clock)
        for svc in self.services.values():
            await svc.start()
        for svc in self.services.values():
            for c in svc.consumes():
                await self._subscribe(svc, c)
        if self.settings.universe_config is not None:  # the pair universe may change: follow it
            group = "host." + "+".join(self.names)
            self._subs.append(await self.bus.subscribe(m.UNIVERSE_CHANGED, group, self._on_universe))
        for svc in self.services.values():
            for job in svc.jobs():
                self._jobs.append(asyncio.create_task(self._run_job(svc, job), name=f"job:{svc.name}:{job.name}"))
        self.started = True
        settle_heap()  # the start-up object graph is long-lived: keep the collector off it (runtime/heap.py)
        log.info(
            "host started", services=list(self.services), bus=self.bus.url.split("@")[-1], database=self.db.dialect
        )

    async def _subscribe(self, svc: Service, c: Consumes) -> None:
        declared = c.group or svc.name
        group, handler = declared, c.handler
        per_instance = c.broadcast and hasattr(self.bus, "ownerships")  # a bus shared by processes
        if per_instance:
            group = broadcast_group(group, self.instance or instance_name())
        if self.metrics is not None:  # timed and counted per (service, topic, group)
            handler = self.metrics.wrap(svc.name, c.topic, group, handler)
        if per_instance:
            sub = await self.bus.subscribe(c.topic, group, handler, from_latest=True)  # type: ignore[call-arg]
        else:
            sub = await self.bus.subscribe(c.topic, group, handler)
        self._subs.append(sub)
        self._by_key[(svc.name, c.topic, declared)] = sub

    async def _on_universe(self, msg: Message) -> None:
        """The universe changed: SYMBOLS becomes its `streamed` list and every hosted service's per-symbol
        subscriptions (its `consumes()`, which reads SYMBOLS) follow: new topics subscribed, dropped ones
        stopped. Services that cache the list themselves (gateway, analyzer) follow the message directly."""
        streamed = [s.upper() for s in msg.payload.streamed]
        if streamed == self.settings.symbols or not streamed:
            return
        self.settings.symbols = streamed
        wanted: set[tuple[str, str, str]] = set()
        for svc in self.services.values():
            for c in svc.consumes():
                key = (svc.name, c.topic, c.group or svc.name)
                wanted.add(key)
                if key not in self._by_key:
                    await self._subscribe(svc, c)
        for key in [k for k in self._by_key if k not in wanted]:
            sub = self._by_key.pop(key)
            self._subs.remove(sub)
            await sub.stop()
        log.info("subscriptions follow the universe", symbols=len(streamed))

    async def _run_job(self, svc: Service, job: Job) -> None:
        if not job.run_at_start:
            await asyncio.sleep(job.interval_s)
        while True:
            try:
                await job.fn()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - one failing run must not stop the schedule
                svc.log.error("job failed", job=job.name, error=repr(exc))
            await asyncio.sleep(job.interval_s)

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        # stop intake: in-flight handlers finish and acknowledge; nothing new is taken
        await self._bounded("bus close", self.bus.close())
        for t in self._jobs:
            t.cancel()
        for t in self._jobs:
            with contextlib.suppress(asyncio.CancelledError):
                await self._bounded(f"job {t.get_name()}", t)
        for svc in reversed(list(self.services.values())):
            try:
                await self._bounded(f"service {svc.name}", svc.stop())
            except Exception as exc:  # noqa: BLE001 - keep shutting the others down
                log.error("service stop failed", service=svc.name, error=repr(exc))
        await SINK.detach()
        await self.db.close()
        log.info("host stopped")

    async def _bounded(self, step: str, aw: Awaitable[object]) -> None:
        """One step of stop(), at most STOP_STEP_S: a handler or service that never returns must not keep the
        process (and its supervisor) from stopping. On a timeout the step is cancelled and every task's stack is
        logged, so the stuck await can be found."""
        task = asyncio.ensure_future(aw)
        done, _ = await asyncio.wait({task}, timeout=STOP_STEP_S)
        if task in done:
            task.result()  # its error (a cancelled job's CancelledError) goes to the caller
            return
        stacks = {t.get_name(): _stack(t) for t in asyncio.all_tasks() if not t.done()}  # before cancelling
        log.error("host stop: a step did not finish in time; cancelled", step=step, timeout_s=STOP_STEP_S, tasks=stacks)
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)  # a step that ignores cancellation is left behind, not awaited

    async def health(self) -> dict[str, Any]:
        components: dict[str, Any] = {}
        for name, svc in self.services.items():
            try:
                h = await asyncio.wait_for(svc.health(), 5)
                components[name] = {"status": h.status, **h.details}
            except (TimeoutError, ConnectionError, OSError, RuntimeError) as exc:
                components[name] = {"status": "down", "error": repr(exc)}
        try:
            components["bus"] = await asyncio.wait_for(self.bus.health(), 5)
        except (TimeoutError, ConnectionError, OSError) as exc:
            components["bus"] = {"status": "down", "error": repr(exc)}
        try:
            ok = await asyncio.wait_for(self.db.ping(), 5)
            components["database"] = {"status": "ok" if ok else "down", "dialect": self.db.dialect}
        except (TimeoutError, ConnectionError, OSError) as exc:
            components["database"] = {"status": "down", "error": repr(exc)}
        infra_down = any(components[k].get("status") == "down" for k in ("bus", "database"))
        degraded = any(c.get("status", "ok") != "ok" for c in components.values())
        overall = "down" if infra_down else "degraded" if degraded else "ok"
        return {
            "status": overall,
            "time": self.clock.now_ms(),
            "mode": self.settings.trading_mode,
            "components": components,
        }

    async def serve(self, host: str | None = None, port: int | None = None) -> None:
        """Start, serve HTTP until SIGINT/SIGTERM, then stop gracefully."""
        from roottrading.runtime.http import build_app

        self.instance = self.instance or instance_name(port or self.settings.http_port)
        await self.start()
        app = build_app(self, per_service=self.per_service_http)
        config = uvicorn.Config(
            app,
            host=host or self.settings.http_host,
            port=port or self.settings.http_port,
            log_level="warning",
            log_config=None,  # uvicorn's own lines go through our renderer (runtime/logsetup.py)
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self._request_exit)
        try:
            await self._server.serve()
        finally:
            await self.stop()

    def _request_exit(self) -> None:
        log.info("shutdown requested")
        if self._server is not None:
            self._server.should_exit = True


def _stack(task: asyncio.Task[Any]) -> str:
    """Where `task` waits now (a few frames), for the log of a stop step that timed out."""
    buf = io.StringIO()
    task.print_stack(limit=6, file=buf)
    return buf.getvalue()
