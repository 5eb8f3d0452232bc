"""In-process bus: the embedded default, and (synchronous=True) the deterministic bus of backtests.

Messages are encoded to bytes even here, so the memory bus validates exactly what Redis would carry.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import structlog

from roottrading import messages as m
from roottrading.bus.base import BusStats, Handler, RetryPolicy, partition_of

log = structlog.get_logger("bus.memory")


@dataclass
class _Consumer:
    bus: "MemoryBus"
    topic: str
    group: str
    name: str
    handler: Handler
    queue: deque[bytes] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    busy: bool = False
    stopping: bool = False

    async def run(self) -> None:
        while True:
            while not self.queue:
                if self.stopping:
                    return
                self.wakeup.clear()
                await self.wakeup.wait()
            raw = self.queue.popleft()
            self.busy = True
            try:
                await self.bus._deliver(self.topic, self.group, raw, self.handler)
            finally:
                self.busy = False
                self.bus._pending -= 1
                if self.bus._pending == 0:
                    self.bus._idle.set()

    async def stop(self) -> None:
        self.stopping = True
        self.wakeup.set()
        if self.task is not None:
            await self.task


@dataclass
class _Group:
    consumers: list[_Consumer] = field(default_factory=list)


@dataclass
class _Topic:
    log: deque[tuple[str | None, bytes]]
    groups: dict[str, _Group] = field(default_factory=dict)


class MemorySubscription:
    def __init__(self, bus: "MemoryBus", consumer: _Consumer) -> None:
        self.bus, self.consumer = bus, consumer
        self.topic, self.group = consumer.topic, consumer.group

    async def stop(self) -> None:
        await self.bus._unsubscribe(self.consumer)


class MemoryBus:
    """`memory://` backend. `synchronous=True` delivers inside `publish` (depth first): deterministic."""

    def __init__(self, url: str = "memory://", *, synchronous: bool = False, retained: int = 100_000,
                 retry: RetryPolicy | None = None) -> None:
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

    async def publish(self, topic: str, payload: Any, *, key: str | None = None, msg_id: str | None = None,
                      ts: int = 0) -> str:
        if self._closed:
            raise RuntimeError("bus is closed")
        msg_id = msg_id or m.new_message_id()
        raw = m.encode(topic, payload, key=key, msg_id=msg_id, ts=ts or time.time_ns() // 1_000_000)
        await self.publish_raw(topic, raw, key)
        return msg_id

    async def publish_raw(self, topic: str, raw: bytes, key: str | None) -> None:
        """Publish already-encoded bytes (used by the dispatcher and for dead letters)."""
        t = self._topic(topic)
        t.log.append((key, raw))
        self.stats.published += 1
        if self.synchronous:
            for group, g in list(t.groups.items()):
                if g.consumers:
                    await self._deliver(topic, group, raw, g.consumers[0].handler)
            return
        for g in t.groups.values():
            self._enqueue(g, key, raw)

    def _enqueue(self, g: _Group, key: str | None, raw: bytes) -> None:
        if not g.consumers:
            return
        c = g.consumers[partition_of(key, len(g.consumers))]
        c.queue.append(raw)
        self._pending += 1
        self._idle.clear()
        c.wakeup.set()

    async def subscribe(self, topic: str, group: str, handler: Handler, *, consumer: str | None = None
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
        await c.stop()
        # hand what it had not yet taken to the group's remaining consumers
        leftovers = list(c.queue)
        c.queue.clear()
        self._pending -= len(leftovers)
        for raw in leftovers:
            key = m.decode(raw).key if g.consumers else None
            self._enqueue(g, key, raw)
        if self._pending == 0:
            self._idle.set()

    async def _deliver(self, topic: str, group: str, raw: bytes, handler: Handler) -> None:
        """Decode, run the handler with retries, dead-letter on final failure. Never raises."""
        try:
            msg = m.decode(raw)
        except m.MessageError as exc:
            await self._dead_letter(topic, group, "?", raw, f"MessageError: {exc}", 0)
            return
        attempt = 1
        while True:
            try:
                await handler(msg if attempt == 1 else _with_attempt(msg, attempt))
                self.stats.delivered += 1
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a handler's failure must not kill the consumer
                name = type(exc).__name__
                self.stats.errors[name] = self.stats.errors.get(name, 0) + 1
                if attempt >= self.retry.max_attempts:
                    log.warning("handler failed, dead-lettering", topic=topic, group=group, id=msg.id,
                                attempts=attempt, error=repr(exc))
                    await self._dead_letter(topic, group, msg.id, raw, f"{name}: {exc}", attempt)
                    return
                self.stats.retried += 1
                delay = self.retry.delay(attempt)
                if delay:
                    await asyncio.sleep(delay)
                attempt += 1

    async def _dead_letter(self, topic: str, group: str, msg_id: str, raw: bytes, error: str, attempts: int) -> None:
        self.stats.dead_lettered += 1
        if topic.startswith(m.DEAD_LETTER):
            log.error("dead letter itself failed; kept in log only", topic=topic, error=error)
            return
        dl = m.DeadLetter(topic=topic, group=group, message_id=msg_id, error=error[:2000], attempts=attempts,
                          raw=raw.decode("utf-8", "replace"), time=time.time_ns() // 1_000_000)
        await self.publish(m.dead_letter_topic(topic), dl, key=group)

    async def drain(self, timeout: float = 10.0) -> bool:
        if self.synchronous:
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        self._closed = True
        for t in self._topics.values():
            for g in t.groups.values():
                for c in list(g.consumers):
                    await c.stop()

    def retained_messages(self, topic: str) -> list[m.Message]:
        """Everything retained on a topic, decoded (for tests, the dead-letter viewer and the dispatcher)."""
        t = self._topics.get(topic)
        return [m.decode(raw) for _, raw in t.log] if t else []

    async def health(self) -> dict[str, Any]:
        backlog = sum(len(c.queue) for t in self._topics.values() for g in t.groups.values() for c in g.consumers)
        return {"status": "ok" if not self._closed else "down", "backend": "memory", "backlog": backlog,
                "published": self.stats.published, "delivered": self.stats.delivered,
                "dead_lettered": self.stats.dead_lettered}


def _with_attempt(msg: m.Message, attempt: int) -> m.Message:
    return m.Message(id=msg.id, topic=msg.topic, key=msg.key, ts=msg.ts, payload=msg.payload, attempt=attempt)
