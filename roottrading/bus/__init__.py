"""Message bus: one protocol, several backends, chosen by URL (memory://, redis://, nats://)."""

from __future__ import annotations

from typing import Any

from roottrading.bus.base import BusStats, Handler, MessageBus, RetryPolicy, Subscription, partition_of

__all__ = ["BusStats", "Handler", "MessageBus", "RetryPolicy", "Subscription", "create_bus", "partition_of"]


def create_bus(url: str, **kwargs: Any) -> MessageBus:
    """Build the backend named by the URL scheme. A clear error for an unknown scheme."""
    scheme = url.split("://", 1)[0].lower()
    if scheme == "memory":
        from roottrading.bus.memory import MemoryBus

        return MemoryBus(url, synchronous="sync" in url, **kwargs)
    if scheme in ("redis", "rediss"):
        from roottrading.bus.redis import RedisBus

        return RedisBus(url, **kwargs)
    if scheme == "nats":
        from roottrading.bus.nats import NatsBus

        return NatsBus(url, **kwargs)
    raise ValueError(
        f"BUS_URL {url!r}: unknown scheme {scheme!r} (use memory://, redis://host:port/db, nats://host:port)"
    )
