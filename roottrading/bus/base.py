"""The MessageBus contract that every backend honours (tests/bus/contract.py checks it).

- `publish(topic, payload, key=, msg_id=)` stores the message and returns its id. `key` (the symbol)
  decides the partition: messages with the same key reach a group's handler in publish order.
- `subscribe(topic, group, handler)`: each group receives every message once (at least once on failure);
  several consumers in one group share the messages, split by key. A new group starts from the
  oldest retained message, so nothing published before a service started is missed.
- A handler acknowledges by returning. An exception means retry (up to `max_attempts`, with backoff);
  after that, or at once for a message that cannot be decoded, the raw message and the error are parked
  on `deadletter.<topic>` and the group moves on. Message ids let handlers be idempotent.
"""

from __future__ import annotations

import itertools
import os
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from roottrading import messages as m
from roottrading.messages import Message

Handler = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_s: float = 0.01
    backoff_max_s: float = 1.0

    def delay(self, attempt: int) -> float:
        return min(self.backoff_max_s, self.backoff_s * (2.0 ** (attempt - 1)))


@dataclass
class BusStats:
    published: int = 0
    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    # per topic, read by the /metrics collector at scrape time (runtime/metrics.py)
    published_by_topic: dict[str, int] = field(default_factory=dict)
    dead_lettered_by_topic: dict[str, int] = field(default_factory=dict)

    def count_published(self, topic: str, n: int = 1) -> None:
        self.published += n
        self.published_by_topic[topic] = self.published_by_topic.get(topic, 0) + n


class Subscription(Protocol):
    topic: str
    group: str

    async def stop(self) -> None: ...


class MessageBus(Protocol):
    url: str
    stats: BusStats

    async def start(self) -> None: ...

    async def close(self) -> None:
        """Stop intake, let in-flight handlers finish and acknowledge, close connections."""

    async def publish(
        self, topic: str, payload: Any, *, key: str | None = None, msg_id: str | None = None, ts: int = 0
    ) -> str: ...

    async def publish_raw(self, topic: str, raw: bytes, key: str | None) -> None:
        """Publish an envelope already encoded by `messages.encode`, as is (the dispatcher forwards these)."""

    async def subscribe(
        self, topic: str, group: str, handler: Handler, *, consumer: str | None = None
    ) -> Subscription: ...

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every published message has been handled (or parked). For tests and backtests."""

    async def health(self) -> dict[str, Any]: ...


def partition_of(key: str | None, partitions: int) -> int:
    """Stable partition for a key (crc32: the same in every process, unlike hash())."""
    if partitions <= 1 or key is None:
        return 0
    return zlib.crc32(key.encode()) % partitions


class _IdSource:
    """Message ids ~15x cheaper than uuid4().hex (which costs ~3 us, more than encoding a message).

    A random 64-bit per-process prefix plus a counter: unique across processes (re-seeded after fork)."""

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):012x}"


fast_message_id = _IdSource()
os.register_at_fork(after_in_child=fast_message_id.reseed)


def dead_letter_for(
    stats: BusStats, topic: str, group: str, msg_id: str, raw: bytes, error: str, attempts: int
) -> tuple[str, bytes, str] | None:
    """The contract's dead letter, the same in every backend: (dead-letter topic, encoded DeadLetter, its id) carrying the
    raw message and the error, or None when the failing message is itself a dead letter (no dead letters of dead
    letters: it stays where it is and the error is logged by the caller). Counts it in `stats`."""
    stats.dead_lettered += 1
    stats.dead_lettered_by_topic[topic] = stats.dead_lettered_by_topic.get(topic, 0) + 1
    if topic.startswith(m.DEAD_LETTER):
        return None
    dl = m.DeadLetter(
        topic=topic,
        group=group,
        message_id=msg_id,
        error=error[:2000],
        attempts=attempts,
        raw=raw.decode("utf-8", "replace"),
        time=time.time_ns() // 1_000_000,
    )
    dl_topic, dl_id = m.dead_letter_topic(topic), fast_message_id()
    return dl_topic, m.encode(dl_topic, dl, key=group, msg_id=dl_id, ts=dl.time), dl_id
