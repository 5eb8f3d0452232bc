"""`nats://` backend on NATS JetStream: a durable log bus (the reference's "durable log" broker).

Layout and why
--------------
* One JetStream stream per bus prefix (`RT_<prefix>`, file storage) captures the subjects `{prefix}.>`.
* A topic is split into P partition subjects `{prefix}.{topic}.p{n}`, n = partition_of(key, P) (the same crc32
  as the Redis backend, so a symbol lands in the same partition number on both brokers).
* A group is one durable pull consumer per partition (`{group}__{topic}__p{n}`, filter = that partition's
  subject, deliver policy ALL: a new group starts from the oldest retained message) with **max_ack_pending=1**.
  JetStream itself then hands a partition's messages out one at a time, in stream order, even when several
  processes fetch from the same durable: per-key order holds across processes without any lease protocol, and
  partitions give P-way parallelism per group. (max_ack_pending=1 on a single durable per topic would serialise
  the whole topic; partitions alone would need leases to stop two processes interleaving one partition.)
  Inside one process, consumers of the same group split the partitions (partition n goes to member n % members),
  so a key sticks to one member as the contract asks.
* Ack after the handler returns. A raising handler is retried in place with backoff; `msg.metadata.num_delivered`
  (redeliveries after a consumer crash or an ack_wait expiry) counts as attempts too. After `retry.max_attempts`
  the raw message and the error go to `deadletter.<topic>` and the original is terminated (`term`). A message
  that cannot be decoded is dead-lettered at once.
* Message ids: every publish carries `Nats-Msg-Id: <topic>/<id>`; JetStream drops a second copy with the same id
  inside the stream's duplicate window (default 2 min). A publish retried after a lost reply, or a dispatcher
  re-forwarding after a crash, therefore stores the message once. (Scoped by topic: ids only need to be unique
  per topic in this platform, and a renamed copy of a message must not be mistaken for a duplicate.)
* Server restarts: the client reconnects forever; publish retries with the same id until publish_timeout_s and
  then raises (never drops silently); a fetch loop waits and retries; a missing stream or consumer (a server that
  lost its store) is recreated.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import msgspec
import nats
import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, DiscardPolicy, StorageType, StreamConfig

from roottrading import messages as m
from roottrading.bus.base import BusStats, Handler, RetryPolicy, dead_letter_for, fast_message_id, partition_of

log = structlog.get_logger(__name__)

_TRANSIENT = (
    nats.errors.ConnectionClosedError,
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.errors.NoServersError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.js.errors.ServiceUnavailableError,
    nats.js.errors.NoStreamResponseError,
    nats.errors.ConnectionReconnectingError,
    asyncio.TimeoutError,
    ConnectionError,
    OSError,
)
_SAFE = re.compile(r"[^A-Za-z0-9_-]")


class _IdOnly(msgspec.Struct):
    id: str


_id_decoder = msgspec.json.Decoder(_IdOnly)


def envelope_id(raw: bytes) -> str | None:
    """The message id inside an encoded envelope, or None for bytes that are not an envelope."""
    try:
        return _id_decoder.decode(raw).id
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _safe(name: str) -> str:
    """A NATS stream/consumer name (no '.', '*', '>', spaces); a hash keeps distinct inputs distinct."""
    cleaned = _SAFE.sub("_", name)
    return cleaned if cleaned == name else f"{cleaned}_{zlib.crc32(name.encode()):08x}"


class NatsSubscription:
    def __init__(self, bus: NatsBus, member: _Member) -> None:
        self.bus, self.member = bus, member
        self.topic, self.group = member.topic, member.group

    async def stop(self) -> None:
        await self.bus._leave(self.member)


@dataclass(eq=False)
class _Member:
    topic: str
    group: str
    name: str
    handler: Handler


@dataclass(eq=False)
class _Group:
    topic: str
    group: str
    members: list[_Member] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    busy: list[bool] = field(default_factory=list)
    stopping: bool = False

    def owner(self, p: int) -> _Member | None:
        return self.members[p % len(self.members)] if self.members else None


class NatsBus:
    """MessageBus on NATS JetStream. See the module docstring for the guarantees and the design."""

    def __init__(
        self,
        url: str = "nats://127.0.0.1:4222",
        *,
        prefix: str = "rt",
        partitions: int = 4,
        retry: RetryPolicy | None = None,
        max_msgs: int = 1_000_000,
        max_age_s: float = 0,
        duplicate_window_s: float = 120.0,
        ack_wait_s: float = 5.0,
        fetch_timeout_s: float = 0.25,
        publish_timeout_s: float = 30.0,
        request_timeout_s: float = 2.0,
        replicas: int = 1,
        max_ack_pending: int = 1,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        if not prefix or _SAFE.sub("", prefix.replace(".", "")) != prefix.replace(".", ""):
            raise ValueError(f"prefix {prefix!r}: use letters, digits, '_', '-' (NATS subject tokens)")
        if fetch_timeout_s < 0.01:
            raise ValueError(f"fetch_timeout_s must be >= 0.01, got {fetch_timeout_s}")
        self.url = url
        self.prefix = prefix
        self.partitions = partitions
        self.retry = retry or RetryPolicy()
        self.max_msgs = max_msgs
        self.max_age_s = max_age_s
        self.duplicate_window_s = duplicate_window_s
        self.ack_wait_s = ack_wait_s
        self.fetch_timeout_s = fetch_timeout_s
        self.publish_timeout_s = publish_timeout_s
        self.request_timeout_s = request_timeout_s
        self.replicas = replicas
        self.max_ack_pending = max_ack_pending
        self.stream_name = _safe(f"RT_{prefix}")
        self.stats = BusStats()
        self.duplicates = 0  # publishes JetStream recognised as duplicates (same Nats-Msg-Id): not stored twice
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._connect_task: asyncio.Task[Client] | None = None
        self._stream_ready = False
        self._groups: dict[tuple[str, str], _Group] = {}
        self._durables: set[str] = set()
        self._joined: set[tuple[str, str]] = set()  # (topic, group) joined here: what backlog() reports
        self._closed = False
        self._closing = False
        self._connected = False
        self._beats: set[asyncio.Task[None]] = set()  # in-progress heartbeats: the loop holds tasks weakly

    # --- connection ------------------------------------------------------------------------------------
    async def start(self, wait_s: float | None = None) -> None:
        """Begin connecting (reconnects forever in the background). Waits up to wait_s (default
        request_timeout_s * 2) for the first connection; a server that is down is not an error here:
        publish and consume wait for it."""
        self._closed = self._closing = False
        self._begin_connect()
        try:
            await self._client(self.request_timeout_s * 2 if wait_s is None else wait_s)
        except _TRANSIENT as exc:
            log.warning("nats not reachable yet; will keep trying", url=_redact(self.url), error=repr(exc))

    def _begin_connect(self) -> None:
        if self._connect_task is None:
            self._connect_task = asyncio.create_task(self._connect(), name=f"nats-connect:{self.prefix}")

    async def _connect(self) -> Client:
        async def on_error(exc: Exception) -> None:
            self.stats.errors["connection"] = self.stats.errors.get("connection", 0) + 1

        async def on_disconnect() -> None:
            self._connected = False
            if not self._closing:
                log.warning("nats disconnected", url=_redact(self.url))

        async def on_reconnect() -> None:
            self._connected = True
            self._stream_ready = False  # the server may have lost its store: re-ensure on next use
            log.info("nats reconnected", url=_redact(self.url))

        nc = await nats.connect(
            servers=[self.url],
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.1,
            connect_timeout=1,
            allow_reconnect=True,
            error_cb=on_error,
            disconnected_cb=on_disconnect,
            reconnected_cb=on_reconnect,
            ping_interval=5,
            max_outstanding_pings=2,
            name=f"roottrading-{self.prefix}",
        )
        self._nc, self._js, self._connected = nc, nc.jetstream(timeout=self.request_timeout_s), True
        return nc

    async def _client(self, timeout: float) -> JetStreamContext:
        """The JetStream context once connected and the stream exists; raises TimeoutError after timeout."""
        self._begin_connect()
        assert self._connect_task is not None
        if not self._connect_task.done():
            await asyncio.wait_for(asyncio.shield(self._connect_task), timeout)
        assert self._js is not None
        if not self._stream_ready:
            await self._ensure_stream()
        return self._js

    async def _ensure_stream(self) -> None:
        assert self._js is not None
        cfg = StreamConfig(
            name=self.stream_name,
            subjects=[f"{self.prefix}.>"],
            storage=StorageType.FILE,
            max_msgs=self.max_msgs,
            max_age=self.max_age_s or None,
            discard=DiscardPolicy.OLD,
            duplicate_window=self.duplicate_window_s,
            num_replicas=self.replicas,
        )
        try:
            await self._js.add_stream(cfg)
        except nats.js.errors.BadRequestError as exc:  # exists with another config: keep it, say so
            if "already in use" not in str(exc):
                raise
            log.info("nats stream exists with a different config; using it", stream=self.stream_name)
        self._stream_ready = True

    def subject(self, topic: str, partition: int) -> str:
        return f"{self.prefix}.{topic}.p{partition}"

    # --- publish ---------------------------------------------------------------------------------------
    async def publish(
        self, topic: str, payload: Any, *, key: str | None = None, msg_id: str | None = None, ts: int = 0
    ) -> str:
        msg_id = msg_id or fast_message_id()
        raw = m.encode(topic, payload, key=key, msg_id=msg_id, ts=ts or time.time_ns() // 1_000_000)
        await self._publish(topic, raw, key, msg_id, self.publish_timeout_s)
        return msg_id

    async def publish_raw(self, topic: str, raw: bytes, key: str | None) -> None:
        """Publish already-encoded bytes (the dispatcher's path); the envelope's id becomes Nats-Msg-Id."""
        if self._closed:
            raise RuntimeError("bus is closed")
        await self._publish(topic, raw, key, envelope_id(raw), self.publish_timeout_s)

    async def _publish(
        self, topic: str, raw: bytes, key: str | None, msg_id: str | None, timeout_s: float | None
    ) -> None:
        """Store one message, retrying with the same Nats-Msg-Id while NATS is unreachable.

        Raises the last error after timeout_s (None: retry until the bus closes, then publish_timeout_s)."""
        if self._closed:
            raise RuntimeError("bus is closed")
        subject = self.subject(topic, partition_of(key, self.partitions))
        headers = {"Nats-Msg-Id": f"{topic}/{msg_id}"} if msg_id else None
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        delay, warned = 0.02, False
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            try:
                js = await self._client(max(0.05, min(self.request_timeout_s, left or self.request_timeout_s)))
                ack = await js.publish(subject, raw, timeout=self.request_timeout_s, headers=headers)
                if ack.duplicate:
                    self.duplicates += 1
                self.stats.count_published(topic)
                if warned:
                    log.info("nats publish succeeded again", topic=topic)
                return
            except _TRANSIENT as exc:
                self.stats.errors["publish"] = self.stats.errors.get("publish", 0) + 1
                if isinstance(exc, nats.js.errors.NoStreamResponseError):
                    self._stream_ready = False  # connected but no stream: the server lost it
                if deadline is None and self._closing:
                    deadline = time.monotonic() + self.publish_timeout_s
                if deadline is not None and time.monotonic() >= deadline:
                    raise
                if not warned:
                    log.warning("nats publish failed, retrying", topic=topic, error=repr(exc))
                    warned = True
                await asyncio.sleep(delay)
                delay = min(0.5, delay * 2)

    # --- subscribe -------------------------------------------------------------------------------------
    def durable(self, topic: str, group: str, partition: int) -> str:
        return _safe(f"{group}__{topic}__p{partition}")

    async def subscribe(
        self, topic: str, group: str, handler: Handler, *, consumer: str | None = None
    ) -> NatsSubscription:
        if self._closed:
            raise RuntimeError("bus is closed")
        m.schema_for(topic)  # a clear error now for an undeclared topic, not a dead letter per message
        g = self._groups.get((topic, group))
        if g is None:
            g = self._groups[(topic, group)] = _Group(topic, group)
        self._joined.add((topic, group))
        member = _Member(topic, group, consumer or f"{group}-{len(g.members)}", handler)
        g.members.append(member)
        if not g.tasks:
            for p in range(self.partitions):
                await self._ensure_consumer(topic, group, p, self.publish_timeout_s)
            g.busy = [False] * self.partitions
            g.tasks = [
                asyncio.create_task(self._fetch_loop(g, p), name=f"nats:{topic}:{group}:p{p}")
                for p in range(self.partitions)
            ]
        return NatsSubscription(self, member)

    async def _ensure_consumer(
        self, topic: str, group: str, p: int, timeout_s: float | None
    ) -> JetStreamContext.PullSubscription:
        """Create (or bind to) the partition's durable and return a pull subscription on it."""
        name = self.durable(topic, group, p)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        delay = 0.02
        while True:
            try:
                js = await self._client(self.request_timeout_s)
                cfg = ConsumerConfig(
                    durable_name=name,
                    deliver_policy=DeliverPolicy.ALL,
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=self.ack_wait_s,
                    max_deliver=-1,
                    max_ack_pending=self.max_ack_pending,
                    filter_subject=self.subject(topic, p),
                )
                psub = await js.pull_subscribe(
                    self.subject(topic, p), durable=name, stream=self.stream_name, config=cfg
                )
                self._durables.add(name)
                return psub
            except (*_TRANSIENT, nats.js.errors.NotFoundError) as exc:
                if isinstance(exc, nats.js.errors.NotFoundError):
                    self._stream_ready = False
                if self._closing or (deadline is not None and time.monotonic() >= deadline):
                    raise
                await asyncio.sleep(delay)
                delay = min(0.5, delay * 2)

    async def _fetch_loop(self, g: _Group, p: int) -> None:
        """Read one partition sequentially: fetch one, handle it, ack it, repeat (order = stream order)."""
        psub: JetStreamContext.PullSubscription | None = None
        delay = 0.02
        while not (g.stopping or self._closing):
            try:
                if psub is None:
                    psub = await self._ensure_consumer(g.topic, g.group, p, None)
                msgs = await psub.fetch(1, timeout=self.fetch_timeout_s)
            except (TimeoutError, nats.errors.TimeoutError):
                continue  # nothing new
            except (*_TRANSIENT, nats.js.errors.NotFoundError, nats.js.errors.APIError) as exc:
                if g.stopping or self._closing:
                    break
                self.stats.errors["fetch"] = self.stats.errors.get("fetch", 0) + 1
                log.warning("nats fetch failed, retrying", topic=g.topic, group=g.group, partition=p, error=repr(exc))
                if isinstance(exc, nats.js.errors.NotFoundError | nats.js.errors.APIError):
                    psub = None  # consumer or stream gone (server lost its store): recreate
                    self._stream_ready = False
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)
                continue
            delay = 0.02
            for msg in msgs:
                owner = g.owner(p)
                if owner is None:  # every member left while this message was in flight: let it redeliver
                    await _quiet(msg.nak())
                    continue
                g.busy[p] = True
                try:
                    await self._handle(g.topic, g.group, msg, owner.handler)
                finally:
                    g.busy[p] = False
        if psub is not None:
            await _quiet(psub.unsubscribe())

    async def _handle(self, topic: str, group: str, msg: Msg, handler: Handler) -> None:
        """Decode, run the handler with retries, ack; dead-letter and term on final failure. Never raises."""
        raw = msg.data
        try:
            attempt = msg.metadata.num_delivered or 1
        except (ValueError, IndexError, AttributeError):  # not a JetStream message (cannot happen on a pull sub)
            attempt = 1
        try:
            decoded = m.decode(raw, attempt)
        except m.MessageError as exc:
            await self._dead_letter(topic, group, "?", raw, f"MessageError: {exc}", 0)
            await _quiet(msg.term())
            return
        if attempt > self.retry.max_attempts:
            await self._dead_letter(
                topic,
                group,
                decoded.id,
                raw,
                f"delivered {attempt} times without ack (consumer crashed each time?)",
                attempt,
            )
            await _quiet(msg.term())
            return
        while True:
            try:
                await self._run_handler(handler, decoded, msg)
                self.stats.delivered += 1
                await _quiet(msg.ack())
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a handler's failure must not kill the consumer
                name = type(exc).__name__
                self.stats.errors[name] = self.stats.errors.get(name, 0) + 1
                if attempt >= self.retry.max_attempts:
                    log.warning(
                        "handler failed, dead-lettering",
                        topic=topic,
                        group=group,
                        id=decoded.id,
                        attempts=attempt,
                        error=repr(exc),
                    )
                    await self._dead_letter(topic, group, decoded.id, raw, f"{name}: {exc}", attempt)
                    await _quiet(msg.term())
                    return
                self.stats.retried += 1
                await asyncio.sleep(self.retry.delay(attempt))
                await _quiet(msg.in_progress())  # keep ack_wait from redelivering while we retry
                attempt += 1
                decoded = m.Message(
                    id=decoded.id,
                    topic=decoded.topic,
                    key=decoded.key,
                    ts=decoded.ts,
                    payload=decoded.payload,
                    attempt=attempt,
                )

    async def _run_handler(self, handler: Handler, decoded: m.Message, msg: Msg) -> None:
        """Run the handler; if it outlives a third of ack_wait, tell JetStream it is in progress (repeatedly),
        so a slow handler is not redelivered while a crashed one is, after only ack_wait."""
        loop = asyncio.get_running_loop()
        period = self.ack_wait_s / 3
        timer: asyncio.TimerHandle | None = None

        def beat() -> None:
            nonlocal timer
            task = asyncio.ensure_future(_quiet(msg.in_progress()))
            self._beats.add(task)
            task.add_done_callback(self._beats.discard)
            timer = loop.call_later(period, beat)

        timer = loop.call_later(period, beat)
        try:
            await handler(decoded)
        finally:
            timer.cancel()

    async def _dead_letter(self, topic: str, group: str, msg_id: str, raw: bytes, error: str, attempts: int) -> None:
        letter = dead_letter_for(self.stats, topic, group, msg_id, raw, error, attempts)
        if letter is None:
            log.error("dead letter itself failed; left in its stream only", topic=topic, error=error)
            return
        dl_topic, raw_dl, dl_id = letter
        # retried as long as needed (and while closing): the original is acked only once this is stored
        await self._publish(dl_topic, raw_dl, group, dl_id, None)

    async def _leave(self, member: _Member) -> None:
        g = self._groups.get((member.topic, member.group))
        if g is None or member not in g.members:
            return
        g.members.remove(member)
        if not g.members:  # last member: stop the partition readers (in-flight handlers finish and ack)
            g.stopping = True
            await asyncio.gather(*g.tasks, return_exceptions=True)
            del self._groups[(member.topic, member.group)]

    # --- drain, health, close --------------------------------------------------------------------------
    async def _settled(self) -> bool:
        js = await self._client(self.request_timeout_s)
        for (topic, group), g in list(self._groups.items()):
            for p in range(self.partitions):
                if g.busy and g.busy[p]:
                    return False
                info = await js.consumer_info(self.stream_name, self.durable(topic, group, p))
                if info.num_pending or info.num_ack_pending:
                    return False
        return True

    async def backlog(self) -> dict[tuple[str, str], int]:
        """Messages not yet acknowledged per (topic, group) joined on this bus: each partition durable's
        `num_pending` (not yet delivered) + `num_ack_pending` (delivered, not acked), summed.

        One consumer-info request per partition durable, read at scrape time, never on the message path. A
        durable that does not exist (yet) has nothing waiting."""
        groups = sorted(self._joined)
        if not groups:
            return {}

        async def one(js: JetStreamContext, topic: str, group: str, p: int) -> int:
            try:
                info = await js.consumer_info(self.stream_name, self.durable(topic, group, p))
            except nats.js.errors.NotFoundError:
                return 0
            return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

        try:
            js = await self._client(self.request_timeout_s)
            counts = await asyncio.gather(*(one(js, t, g, p) for t, g in groups for p in range(self.partitions)))
        except (*_TRANSIENT, nats.js.errors.APIError) as exc:  # one shape for the scraper, whatever the broker
            raise ConnectionError(f"nats backlog: {exc!r}") from exc
        P = self.partitions
        return {key: sum(counts[i * P : (i + 1) * P]) for i, key in enumerate(groups)}

    async def drain(self, timeout: float = 10.0) -> bool:
        """True once every group subscribed on this bus has read and acked everything stored for it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if await asyncio.wait_for(self._settled(), max(0.05, deadline - time.monotonic())):
                    return True
            except (*_TRANSIENT, nats.js.errors.NotFoundError):
                pass
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)

    async def health(self) -> dict[str, Any]:
        status = "down"
        stream: dict[str, Any] = {}
        try:
            js = await self._client(2.0)
            info = await js.stream_info(self.stream_name)
            stream = {"messages": info.state.messages, "bytes": info.state.bytes}
            status = "ok" if not self._closed else "down"
        except (*_TRANSIENT, nats.js.errors.NotFoundError, nats.js.errors.APIError) as exc:
            stream = {"error": repr(exc)}
        return {
            "status": status,
            "backend": "nats",
            "prefix": self.prefix,
            "stream": self.stream_name,
            "partitions": self.partitions,
            "connected": self._connected,
            **stream,
            "groups": sorted(f"{t}/{g}" for t, g in self._groups),
            "published": self.stats.published,
            "delivered": self.stats.delivered,
            "dead_lettered": self.stats.dead_lettered,
            "duplicates": self.duplicates,
            "errors": dict(self.stats.errors),
        }

    async def close(self) -> None:
        """Stop fetching, let in-flight handlers finish and ack, then close the connection."""
        self._closing = True
        for g in list(self._groups.values()):
            g.stopping = True
        for g in list(self._groups.values()):
            await asyncio.gather(*g.tasks, return_exceptions=True)
        self._groups.clear()
        self._closed = True
        task, self._connect_task = self._connect_task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._nc is not None:
            try:
                await asyncio.wait_for(self._nc.close(), 5)
            except (TimeoutError, *_TRANSIENT):
                log.warning("nats close did not finish cleanly", url=_redact(self.url))
        self._nc = self._js = None
        self._stream_ready = self._connected = False

    async def delete_stream(self) -> None:
        """Delete this prefix's stream and everything in it (tests and tear-down only)."""
        js = await self._client(self.request_timeout_s)
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(self.stream_name)
        self._stream_ready = False


async def _quiet(coro: Any) -> None:
    """Ack/nak/term/unsubscribe: a lost one means a redelivery (handled by message ids), never a crash."""
    try:
        await coro
    except (*_TRANSIENT, nats.errors.Error) as exc:
        log.debug("nats ack-type call failed", error=repr(exc))


def _redact(url: str) -> str:
    return url.split("@")[-1]
