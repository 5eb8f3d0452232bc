"""Fan-out of encoded stream payloads to WebSocket connections (and to any other module's streams)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)


class Connection:
    """One client's subscriptions and outgoing queue of (stream, payload-bytes)."""

    def __init__(self, conn_id: int, combined: bool, maxsize: int) -> None:
        self.id = conn_id
        self.combined = combined
        self.streams: set[str] = set()
        self.queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize)
        self.overflowed = False


class Hub:
    """`publish(stream, payload)` delivers to every connection subscribed to `stream`.

    Stream names are validated by `validators`: other modules (e.g. a user-data stream keyed by a
    listenKey) append a predicate and publish on their own stream names.
    """

    def __init__(self) -> None:
        self._subs: dict[str, set[Connection]] = {}
        self.connections: set[Connection] = set()
        self.validators: list[Callable[[str], bool]] = []
        self._next_id = 0

    def connect(self, combined: bool, maxsize: int) -> Connection:
        self._next_id += 1
        conn = Connection(self._next_id, combined, maxsize)
        self.connections.add(conn)
        return conn

    def disconnect(self, conn: Connection) -> None:
        self.connections.discard(conn)
        for s in list(conn.streams):
            self.unsubscribe(conn, s)

    def valid(self, stream: str) -> bool:
        return any(v(stream) for v in self.validators)

    def subscribe(self, conn: Connection, stream: str) -> None:
        conn.streams.add(stream)
        self._subs.setdefault(stream, set()).add(conn)

    def unsubscribe(self, conn: Connection, stream: str) -> None:
        conn.streams.discard(stream)
        subs = self._subs.get(stream)
        if subs is not None:
            subs.discard(conn)
            if not subs:
                del self._subs[stream]

    def has_subscribers(self, stream: str) -> bool:
        return stream in self._subs

    def publish(self, stream: str, payload: bytes) -> None:
        for conn in tuple(self._subs.get(stream, ())):
            try:
                conn.queue.put_nowait((stream, payload))
            except asyncio.QueueFull:
                conn.overflowed = True  # the sender closes it, like Binance drops slow consumers
                log.warning("fake_binance.slow_client", conn=conn.id)
