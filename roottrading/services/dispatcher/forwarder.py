"""The routing engine: one forwarder per route, each with its own spill log and drainer task.

Delivery rule (nothing lost, nothing twice):
* The source handler returns (so the source acks) only after the message is either stored by the target
  (direct path) or fsync'd to the route's spill log. A transform error raises: the source bus retries it and
  parks it on its dead-letter topic.
* Direct path only while the spill log is empty; once anything is spilled, every later message of the route
  goes behind it, and the drainer forwards the log in order. Per-key order therefore holds through an outage
  (a key's messages reach the handler one at a time, so a key can never have one message in flight directly
  while an earlier one waits in the log).
* Every forward carries the original message id. A forward whose reply was lost (timeout, broker killed) is
  spilled and re-sent with the same id: the NATS target drops it (Nats-Msg-Id), a Redis target's consumers
  dedupe by id.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import structlog

from roottrading import messages as m
from roottrading.bus import create_bus
from roottrading.bus.base import MessageBus
from roottrading.services.dispatcher.routes import (
    Endpoint,
    RoutesConfig,
    RoutesError,
    RouteSpec,
    Transform,
    expand,
    load_transform,
    render_topic,
)
from roottrading.services.dispatcher.spill import SpillLog


def _forward_errors() -> tuple[type[BaseException], ...]:
    """What a target's publish raises while its broker is down or slow (each backend's own errors)."""
    errs: list[type[BaseException]] = [TimeoutError, ConnectionError, OSError]
    try:
        from redis.exceptions import RedisError

        errs.append(RedisError)
    except ImportError:  # redis not installed: no Redis targets either
        pass
    try:
        import nats.errors

        errs.append(nats.errors.Error)
    except ImportError:
        pass
    return tuple(errs)


FORWARD_ERRORS = _forward_errors()
log = structlog.get_logger(__name__)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class RouteForwarder:
    def __init__(
        self,
        spec: RouteSpec,
        topics: list[str],
        target: MessageBus,
        spill_dir: Path,
        *,
        memory_max: int,
        forward_timeout_s: float,
    ) -> None:
        self.spec = spec
        self.topics = topics
        self.group = spec.group or f"dispatcher-{spec.name}"
        self.target = target
        self.transform: Transform = load_transform(spec.transform)
        self.spill = SpillLog(spill_dir, spec.name, memory_max=memory_max)
        self.forward_timeout_s = forward_timeout_s
        self.forwarded = self.forwarded_direct = self.forwarded_spilled = 0
        self.failed = self.dropped = 0
        self.last_error: str | None = None
        self.last_error_time: int | None = None
        self.lag_ms: int | None = None
        self.target_up = True
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._drain_loop(), name=f"dispatcher:{self.spec.name}")
        if self.spill.pending:
            self._wake.set()

    async def handle(self, msg: m.Message) -> None:
        """Source handler: forward now, or spill durably; returns only when one of them is done."""
        out = self.transform(msg)
        if out is None:
            self.dropped += 1
            return
        topic = render_topic(self.spec.target_topic, out)
        raw = m.encode(topic, out.payload, key=out.key, msg_id=out.id, ts=out.ts)
        if self.spill.pending == 0:
            try:
                await asyncio.wait_for(self.target.publish_raw(topic, raw, out.key), self.forward_timeout_s)
                self._forwarded(out.ts, direct=True)
                return
            except FORWARD_ERRORS as exc:
                self._failed(exc)
        await self.spill.append(topic, out.key, out.ts, raw)
        self._wake.set()

    def _forwarded(self, ts: int, *, direct: bool) -> None:
        self.forwarded += 1
        if direct:
            self.forwarded_direct += 1
        else:
            self.forwarded_spilled += 1
        self.lag_ms = max(0, now_ms() - ts) if ts else None
        if not self.target_up:
            log.info("dispatcher target reachable again", route=self.spec.name, target=self.spec.target)
        self.target_up = True

    def _failed(self, exc: BaseException) -> None:
        self.failed += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:500]
        self.last_error_time = now_ms()
        if self.target_up:
            log.warning(
                "dispatcher target failing; spilling to disk",
                route=self.spec.name,
                target=self.spec.target,
                error=self.last_error,
            )
        self.target_up = False

    async def _drain_loop(self) -> None:
        """Forward the spill log in order; back off while the target is down."""
        delay = 0.05
        while True:
            entry = self.spill.peek()
            if entry is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await asyncio.wait_for(
                    self.target.publish_raw(entry.t, entry.r.encode(), entry.k), self.forward_timeout_s
                )
            except FORWARD_ERRORS as exc:
                self._failed(exc)
                await asyncio.sleep(delay)
                delay = min(2.0, delay * 2)
                continue
            delay = 0.05
            self._forwarded(entry.ts, direct=False)
            await self.spill.done(entry)

    async def stop(self) -> None:
        """Stop forwarding; what is still spilled stays on disk for the next start."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.spill.close()

    def stats(self) -> dict[str, Any]:
        pending = self.spill.pending
        head = self.spill.memory[0] if self.spill.memory else None
        lag = max(0, now_ms() - head.ts) if head is not None and head.ts else self.lag_ms
        return {
            "match": self.spec.match,
            "target": self.spec.target,
            "target_topic": self.spec.target_topic,
            "transform": self.spec.transform,
            "group": self.group,
            "topics": self.topics,
            "mode": "spilling" if pending else "direct",
            "target_up": self.target_up,
            "forwarded": self.forwarded,
            "forwarded_direct": self.forwarded_direct,
            "forwarded_from_spill": self.forwarded_spilled,
            "buffered": len(self.spill.memory),
            "pending": pending,
            "on_disk_only": self.spill.disk_only,
            "spilled": self.spill.spilled_total,
            "failed": self.failed,
            "dropped": self.dropped,
            "last_error": self.last_error,
            "last_error_time": self.last_error_time,
            "lag_ms": lag,
        }


class Dispatcher:
    """Routes between a source bus and target buses. Usable without a Host (tests, tools)."""

    def __init__(
        self,
        config: RoutesConfig,
        *,
        data_dir: Path,
        symbols: list[str],
        source: MessageBus | None = None,
        targets: dict[str, MessageBus] | None = None,
    ) -> None:
        self.config = config
        self.spill_dir = Path(data_dir) / "dispatcher"
        self.topics = {r.name: expand(r, symbols, config.topics) for r in config.routes}
        self.own_source = config.source.url is not None
        if self.own_source:
            self.source: MessageBus | None = _make_bus(config.source)
        else:
            self.source = source
        if self.source is None:
            raise RoutesError("dispatcher: no source bus (pass one, or set source.url in the routes)")
        self.injected = dict(targets or {})
        self.targets: dict[str, MessageBus] = {}
        self.forwarders: dict[str, RouteForwarder] = {}
        self._subs: list[Any] = []
        self._check_loops()

    def _check_loops(self) -> None:
        src_url, src_prefix = getattr(self.source, "url", None), getattr(self.source, "prefix", None)
        for r in self.config.routes:
            t = self.config.targets[r.target]
            same = r.target not in self.injected and t.url == src_url and (t.prefix or src_prefix) == src_prefix
            if same and r.target_topic == "{topic}" and not (r.transform or "").startswith("rename:"):
                raise RoutesError(
                    f"route {r.name!r} forwards {r.match!r} into the bus it reads from, "
                    "same topics: an endless loop (use another prefix or a target_topic)"
                )

    def subscriptions(self) -> list[tuple[str, str, Any]]:
        """(topic, group, handler) for every route; the host subscribes them when the source is its bus."""
        return [(t, f.group, f.handle) for f in self.forwarders.values() for t in f.topics]

    async def start(self, *, subscribe: bool | None = None) -> None:
        """Start targets (a target that is down is not an error: its routes spill), forwarders, and the
        source subscriptions when `subscribe` (default: when the source is the dispatcher's own bus)."""
        assert self.source is not None
        if self.own_source:
            await self.source.start()
        for name, ep in self.config.targets.items():
            self.targets[name] = self.injected.get(name) or _make_bus(ep)
        await asyncio.gather(*(b.start() for n, b in self.targets.items() if n not in self.injected))
        for r in self.config.routes:
            f = RouteForwarder(
                r,
                self.topics[r.name],
                self.targets[r.target],
                self.spill_dir,
                memory_max=self.config.memory_max,
                forward_timeout_s=self.config.forward_timeout_s,
            )
            self.forwarders[r.name] = f
            f.start()
        if subscribe if subscribe is not None else self.own_source:
            for topic, group, handler in self.subscriptions():
                self._subs.append(await self.source.subscribe(topic, group, handler))
        log.info(
            "dispatcher started",
            routes={n: len(f.topics) for n, f in self.forwarders.items()},
            pending={n: f.spill.pending for n, f in self.forwarders.items() if f.spill.pending},
        )

    async def stop(self) -> None:
        for s in self._subs:
            await s.stop()
        self._subs.clear()
        for f in self.forwarders.values():
            await f.stop()
        for name, b in self.targets.items():
            if name not in self.injected:
                await b.close()
        if self.own_source and self.source is not None:
            await self.source.close()

    async def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once no route has anything left in its spill log (for tests and graceful hand-over)."""
        deadline = time.monotonic() + timeout
        while any(f.spill.pending for f in self.forwarders.values()):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def stats(self) -> dict[str, Any]:
        routes = {n: f.stats() for n, f in self.forwarders.items()}
        keys = ("forwarded", "buffered", "pending", "spilled", "failed", "dropped")
        return {"routes": routes, "totals": {k: sum(r[k] for r in routes.values()) for k in keys}}


def _make_bus(ep: Endpoint) -> MessageBus:
    assert ep.url is not None
    kw: dict[str, Any] = dict(ep.options)
    if ep.prefix is not None and not ep.url.startswith("memory"):
        kw["prefix"] = ep.prefix
    return create_bus(ep.url, **kw)
