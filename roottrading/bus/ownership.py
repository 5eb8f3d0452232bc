"""Which keys (symbols) this process owns for one (topic, group): the bus's partition ownership, made explicit.

Why: several instances of a stateful service (the trader, the coordinator) must never act on the same symbol.
The Redis Streams bus already gives one member of a group an exclusive lease per partition of a topic
(bus/redis_consumer.py); `Ownership` exposes that lease set to the service, so "the instance that reads a
symbol's order requests" is also "the instance that manages that symbol's cycles, orders and reconciliation".

- `owns(key)`: the key's partition is held AND its lease is still valid by this process's own monotonic clock
  (acquired or last renewed at t, valid until t + lease_ms - min(0.5 s, lease_ms / 10)). A process whose event loop stalled past
  its lease therefore stops acting on the symbol at once, before it even learns that the lease is gone, and
  before another member can have taken it (the lease is only free after lease_ms in Redis).
- `on_acquire` / `on_release` callbacks (async, given the set of partitions): awaited by the consumer before it
  reads a newly leased partition (so a takeover loads the symbols' state first) and before it hands a
  partition back on a rebalance (so the old owner has let go before the new one can start). A lease lost
  (expired, not renewed in time) fires `on_release` after the fact.
- Backends without exclusive partitions (memory: one process; NATS: processes share each partition's durable)
  report everything owned: run one instance of a stateful service there.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable

import structlog

from roottrading.bus.base import partition_of

log = structlog.get_logger(__name__)

PartitionCallback = Callable[[set[int]], Awaitable[None]]
MARGIN_S = 0.5  # stop acting this long (at most a tenth of the lease) before the lease could expire in Redis


class Ownership:
    """The partitions of (topic, group) held by this process. See the module docstring."""

    def __init__(self, topic: str, group: str, partitions: int, *, everything: bool = False) -> None:
        self.topic, self.group, self.partitions = topic, group, partitions
        self.everything = everything  # memory / NATS: one instance, it owns every key
        self.valid_until: dict[int, float] = {}  # partition -> monotonic deadline of the lease
        self._acquire: list[PartitionCallback] = []
        self._release: list[PartitionCallback] = []

    # --- queries (hot path: a dict lookup and a crc32) ----------------------------------------------------
    def partition(self, key: str) -> int:
        return partition_of(key, self.partitions)

    def owns(self, key: str | None) -> bool:
        if self.everything:
            return True
        if key is None:
            return False
        until = self.valid_until.get(partition_of(key, self.partitions))
        return until is not None and time.monotonic() < until

    def owned_partitions(self) -> set[int]:
        if self.everything:
            return set(range(self.partitions))
        now = time.monotonic()
        return {p for p, until in self.valid_until.items() if now < until}

    def keys_of(self, partitions: Iterable[int], keys: Iterable[str]) -> set[str]:
        """The keys among `keys` that fall in `partitions`."""
        ps = set(partitions)
        return {k for k in keys if partition_of(k, self.partitions) in ps}

    # --- callbacks ------------------------------------------------------------------------------------------
    def on_acquire(self, cb: PartitionCallback) -> None:
        self._acquire.append(cb)

    def on_release(self, cb: PartitionCallback) -> None:
        self._release.append(cb)

    # --- driven by the bus consumer ---------------------------------------------------------------------
    def renewed(self, partition: int, started: float, lease_s: float) -> None:
        """The lease of `partition` was set or renewed by a request sent at monotonic time `started`."""
        self.valid_until[partition] = started + lease_s - min(MARGIN_S, lease_s / 10)

    async def acquired(self, partitions: set[int], started: float, lease_s: float) -> bool:
        """Newly leased partitions: run the acquire callbacks (load state) before anything is read from them.
        False when a callback failed: the caller gives the leases back (another member, or a later balance,
        takes them) rather than reading a partition whose state was not loaded."""
        for p in partitions:
            self.renewed(p, started, lease_s)
        try:
            for cb in self._acquire:
                await cb(set(partitions))
        except Exception as exc:  # noqa: BLE001 - any failure: do not own what could not be loaded
            log.error(
                "acquire callback failed; lease given back",
                topic=self.topic,
                partitions=sorted(partitions),
                error=repr(exc),
            )
            await self.releasing(partitions)
            return False
        return True

    async def releasing(self, partitions: set[int]) -> None:
        """Called before the leases are given back (or after they were lost): stop acting on them first."""
        for p in partitions:
            self.valid_until.pop(p, None)
        for cb in self._release:
            try:
                await cb(set(partitions))
            except Exception as exc:  # noqa: BLE001 - the lease goes anyway; valid_until already stops owns()
                log.error("release callback failed", topic=self.topic, partitions=sorted(partitions), error=repr(exc))


def ownership_for(bus: object, topic: str, group: str) -> Ownership:
    """The bus's ownership of (topic, group) for this process; everything for a bus without partition leases.
    Call it before subscribing, so the consumer drives it from its first lease."""
    make = getattr(bus, "ownership", None)
    if make is None:
        return Ownership(topic, group, 1, everything=True)
    own: Ownership = make(topic, group)
    return own
