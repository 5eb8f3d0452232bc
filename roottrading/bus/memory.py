"""In-process bus: the embedded default, and (synchronous=True) the deterministic bus of backtests.

Messages are encoded to bytes even here, so the memory bus validates exactly what Redis would carry.
Competing consumers in a group share keys: a key is owned by one consumer while it lives (new keys go to
the least loaded one), so per-key order holds when consumers join or leave. Each consumer drains its whole
queue per wake-up (no Event round trip per message): >200k msg/s, see benchmarks/bus.py.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog

from roottrading import messages as m
from roottrading.bus.base import BusStats, Handler, RetryPolicy, dead_letter_for, fast_message_id

log = structlog.get_logger("bus.memory")


@dataclass
class _Consumer:
    bus: MemoryBus
    topic: str
    group: str
    name: str
    handler: Handler
    queue: deque[bytes] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    busy: bool = False
    stopping: bool = False
    aborting: bool = False  # shutdown: finish the in-flight message only

    async def run(self) -> None:
        """Drain the whole queue per wake-up: no Event round trip per message (the hot path of backtests)."""
        bus, queue, decode, stats = self.bus, self.queue, m.decode, self.bus.stats
        topic, group, handler = self.topic, self.group, self.handler
        while True:
            while not queue:
                if self.stopping:
                    return
                self.wakeup.clear()
                await self.wakeup.wait()
            self.busy = True
            try:
                while queue and not self.aborting:  # MemoryBus._deliver inlined: one coroutine frame less
                    raw = queue.popleft()
                    try:
                        try:
                            msg = decode(raw)
                        except m.MessageError as exc:
                            await bus._dead_letter(topic, group, "?", raw, f"MessageError: {exc}", 0)
                            continue
                        try:
                            await handler(msg)
                            stats.delivered += 1
                        except asyncio.CancelledError:
                            raise
                        except Exception as exc:  # noqa: BLE001 - a handler's failure must not kill the consumer
                            await bus._retry(topic, group, raw, msg, handler, exc)
                    finally:
                        bus._pending -= 1
            finally:
                self.busy = False
                if bus._pending == 0:
                    bus._idle.set()
            if self.aborting:
                return

    async def stop(self, *, abort: bool = False) -> int:
        """Stop after the queue is drained (hand-over keeps order), or with `abort` right after the
        in-flight message (shutdown). Returns how many queued messages were discarded."""
        self.stopping = True
        self.aborting = abort
        self.wakeup.set()
        if self.task is not None:
            await self.task
        dropped = len(self.queue) if abort else 0
        if dropped:
            self.bus._pending -= dropped
            self.queue.clear()
        return dropped


@dataclass
class _Group:
    consumers: list[_Consumer] = field(default_factory=list)
    # key -> consumer, sticky while that consumer lives: a key never has messages queued at two consumers,
    # so per-key order holds even when consumers join or leave (new keys go to the least loaded consumer)
    owner: dict[str | None, _Consumer] = field(default_factory=dict)
    load: dict[int, int] = field(default_factory=dict)  # id(consumer) -> number of keys owned


@dataclass
class _Topic:
    log: deque[tuple[str | None, bytes]]
    groups: dict[str, _Group] = field(default_factory=dict)


class MemorySubscription:
    def __init__(self, bus: MemoryBus, consumer: _Consumer) -> None:
        self.bus, self.consumer = bus, consumer
        self.topic, self.group = consumer.topic, consumer.group

    async def stop(self) -> None:
        await self.bus._unsubscribe(self.consumer)


class MemoryBus:
    """`memory://` backend. `synchronous=True` delivers inside `publish` (depth first): deterministic."""

    def __init__(
        self,
        url: str = "memory://",
        *,
        synchronous: bool = False,
        retained: int = 100_000,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.url = url
        self.synchronous = synchronous
        self.retained = retained
        self.retry = retry or RetryPolicy(backoff_s=0.0 if synchronous else 0.01)
        self.stats = BusStats()
        self._topics: dict[str, _Topic] = {}
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False
        self._sync_subs: dict[str, dict[str, Handler]] = {}

    async def start(self) -> None:
        self._closed = False

    def _topic(self, topic: str) -> _Topic:
        t = self._topics.get(topic)
        if t is None:
            t = self._topics[topic] = _Topic(log=deque(maxlen=self.retained))
        return t

    async def publish(
        self, topic: str, payload: Any, *, key: str | None = None, msg_id: str | None = None, ts: int = 0
    ) -> str:
        if self._closed:
            raise RuntimeError("bus is closed")
        msg_id = msg_id or fast_message_id()
        raw = m.encode(topic, payload, key=key, msg_id=msg_id, ts=ts or time.time_ns() // 1_000_000)
        if self.synchronous:
            await self._publish_raw(topic, raw, key)
            return msg_id
        t = self._topics.get(topic) or self._topic(topic)  # inlined publish_raw: the hot path
        t.log.append((key, raw))
        self.stats.count_published(topic)
        for g in t.groups.values():
            self._enqueue(g, key, raw)
        return msg_id

    async def publish_many(self, topic: str, items: Iterable[tuple[Any, str | None]]) -> list[str]:
        """Publish (payload, key) pairs; same API as RedisBus.publish_many."""
        return [await self.publish(topic, payload, key=key) for payload, key in items]

    async def publish_raw(self, topic: str, raw: bytes, key: str | None) -> None:
        """Publish already-encoded bytes (used by the dispatcher)."""
        if self._closed:
            raise RuntimeError("bus is closed")
        await self._publish_raw(topic, raw, key)

    async def _publish_raw(self, topic: str, raw: bytes, key: str | None) -> None:
        """No closed check: dead letters of the backlog that close() finishes must still be stored."""
        t = self._topic(topic)
        t.log.append((key, raw))
        self.stats.count_published(topic)
        if self.synchronous:
            for group, g in list(t.groups.items()):
                if g.consumers:
                    await self._deliver(topic, group, raw, g.consumers[0].handler)
            return
        for g in t.groups.values():
            self._enqueue(g, key, raw)

    def _enqueue(self, g: _Group, key: str | None, raw: bytes) -> None:
        c = g.owner.get(key)
        if c is None:
            if not g.consumers:
                return
            c = min(g.consumers, key=lambda x: g.load.get(id(x), 0))
            g.owner[key] = c
            g.load[id(c)] = g.load.get(id(c), 0) + 1
        c.queue.append(raw)
        self._pending += 1
        if self._pending == 1:
            self._idle.clear()
        if not c.busy:
            c.wakeup.set()

    async def subscribe(
        self, topic: str, group: str, handler: Handler, *, consumer: str | None = None
    ) -> MemorySubscription:
        t = self._topic(topic)
        g = t.groups.get(group)
        new_group = g is None
        if g is None:
            g = t.groups[group] = _Group()
        c = _Consumer(self, topic, group, consumer or f"{group}-{len(g.consumers)}", handler)
        g.consumers.append(c)
        if not self.synchronous:
            c.task = asyncio.create_task(c.run(), name=f"bus:{topic}:{group}:{c.name}")
        if new_group:  # a new group starts from the oldest retained message
            for key, raw in list(t.log):
                if self.synchronous:
                    await self._deliver(topic, group, raw, handler)
                else:
                    self._enqueue(g, key, raw)
        return MemorySubscription(self, c)

    async def _unsubscribe(self, c: _Consumer) -> None:
        g = self._topics[c.topic].groups[c.group]
        if c in g.consumers:
            g.consumers.remove(c)
        await c.stop()  # finishes what it had queued, so its keys can move without reordering
        for key in [k for k, owner in g.owner.items() if owner is c]:
            del g.owner[key]
        g.load.pop(id(c), None)
        if self._pending == 0:
            self._idle.set()

    async def _deliver(self, topic: str, group: str, raw: bytes, handler: Handler) -> None:
        """Decode, run the handler with retries, dead-letter on final failure. Never raises (but cancels)."""
        try:
            msg = m.decode(raw)
        except m.MessageError as exc:
            await self._dead_letter(topic, group, "?", raw, f"MessageError: {exc}", 0)
            return
        try:
            await handler(msg)  # fast path: first attempt succeeds
            self.stats.delivered += 1
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a handler's failure must not kill the consumer
            first = exc
        await self._retry(topic, group, raw, msg, handler, first)

    async def _retry(
        self, topic: str, group: str, raw: bytes, msg: m.Message, handler: Handler, exc: Exception
    ) -> None:
        attempt = 1
        while True:
            name = type(exc).__name__
            self.stats.errors[name] = self.stats.errors.get(name, 0) + 1
            if attempt >= self.retry.max_attempts:
                log.warning(
                    "handler failed, dead-lettering",
                    topic=topic,
                    group=group,
                    id=msg.id,
                    attempts=attempt,
                    error=repr(exc),
                )
                await self._dead_letter(topic, group, msg.id, raw, f"{name}: {exc}", attempt)
                return
            self.stats.retried += 1
            delay = self.retry.delay(attempt)
            if delay:
                await asyncio.sleep(delay)
            attempt += 1
            try:
                await handler(_with_attempt(msg, attempt))
                self.stats.delivered += 1
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - see above
                exc = e

    async def _dead_letter(self, topic: str, group: str, msg_id: str, raw: bytes, error: str, attempts: int) -> None:
        letter = dead_letter_for(self.stats, topic, group, msg_id, raw, error, attempts)
        if letter is None:
            log.error("dead letter itself failed; kept in log only", topic=topic, error=error)
            return
        await self._publish_raw(letter[0], letter[1], group)

    async def backlog(self) -> dict[tuple[str, str], int]:
        """Messages not yet handled per (topic, group): queued plus the one a busy consumer is running (the
        same meaning as the Redis/NATS backlogs: not yet acknowledged). Read at scrape time."""
        return {
            (name, group): sum(len(c.queue) + c.busy for c in g.consumers)
            for name, t in list(self._topics.items())
            for group, g in list(t.groups.items())
        }

    async def drain(self, timeout: float = 10.0) -> bool:
        if self.synchronous:
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        """Stop intake; in-flight handlers finish. Queued messages are dropped: the memory bus is not durable
        (the Redis bus keeps them pending for the next start)."""
        self._closed = True
        dropped = 0
        # snapshots: an in-flight handler finishing during close may still touch topics and groups
        for t in list(self._topics.values()):
            for g in list(t.groups.values()):
                for c in list(g.consumers):
                    dropped += await c.stop(abort=True)
        if self._pending <= 0:
            self._idle.set()
        if dropped:
            log.info("memory bus closed with undelivered messages", dropped=dropped)

    def retained_messages(self, topic: str) -> list[m.Message]:
        """Everything retained on a topic, decoded (for tests, the dead-letter viewer and the dispatcher)."""
        t = self._topics.get(topic)
        return [m.decode(raw) for _, raw in t.log] if t else []

    async def health(self) -> dict[str, Any]:
        backlog = sum(len(c.queue) for t in self._topics.values() for g in t.groups.values() for c in g.consumers)
        return {
            "status": "ok" if not self._closed else "down",
            "backend": "memory",
            "backlog": backlog,
            "published": self.stats.published,
            "delivered": self.stats.delivered,
            "dead_lettered": self.stats.dead_lettered,
        }


def _with_attempt(msg: m.Message, attempt: int) -> m.Message:
    return m.Message(id=msg.id, topic=msg.topic, key=msg.key, ts=msg.ts, payload=msg.payload, attempt=attempt)
