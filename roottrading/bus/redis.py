"""`redis://` backend on Redis Streams: the bus of services running in separate processes.

Layout and why
--------------
* A topic is split into P partition streams `{prefix}:{topic}:{p}`, p = partition_of(key, P). The key is the
  symbol, so every message of one symbol lives in one stream, in publish order.
* A consumer group is a Redis consumer group created at id 0 with MKSTREAM on every partition stream: a new
  group starts from the oldest retained entry, so nothing published before a service started is lost.
* Per-key order with several consumers in one group: a consumer only reads a partition while it holds that
  partition's *lease* (`{prefix}:lease:{topic}:{group}:{p}`, SET NX PX, renewed by a heartbeat task every
  lease_ms/3, released with a compare-and-delete script). One lease holder means one sequential reader per
  partition, hence per-key order. Consumers register in a member zset and each keeps at most ceil(P / live)
  leases, so competing consumers split the partitions; extra leases are given back at batch boundaries, after
  acking, so a graceful hand-over needs no reclaim.
* Takeover after a crash: a dead consumer stops renewing; its lease expires; another consumer acquires it and,
  before reading new entries (`>`), reclaims the partition's pending entries (XPENDING in id order, then
  XCLAIM of the prefix idle >= claim_idle_ms, default lease_ms; not XAUTOCLAIM, which skips fresh entries and
  would reorder) and re-processes them in id order. lease_ms (default 10 s) bounds the takeover time; it is
  generous so that an event loop starved by CPU-bound user code does not lose its leases. XPENDING's delivery count becomes `Message.attempt`; a message delivered more
  than `retry.max_attempts` times without an ack (a poison message that kills its consumers) is dead-lettered.
* Ack: XACK after the handler returns (batched per stream). A raising handler is retried in place with backoff,
  then the raw entry and the error are published to `deadletter.<topic>` *before* the XACK. An entry that
  cannot be decoded is dead-lettered at once. Delivery is therefore at least once; message ids (stable
  across publish retries) let handlers be idempotent.
* Bounded length: XADD MAXLEN ~ maxlen. A group lagging more than maxlen entries loses the trimmed ones (logged
  as errors["trimmed"]); size maxlen for the worst backlog you accept.
* Throughput: a consumer with a backlog reads all its partitions with one Lua script (non-blocking XREADGROUP
  inside Redis, batches returned packed in 3 bulk strings: redis-py's pure-Python RESP parser was 75% of the
  consumer's CPU); when it keeps up it blocks on plain XREADGROUP (lowest latency). publish_many appends a
  chunk per stream with one atomic Lua script. Scripts touch several stream keys: not for Redis Cluster.
* Redis restarts: every command retries on ConnectionError/TimeoutError/LOADING with exponential backoff.
  publish retries until publish_timeout_s and then raises: it never drops a message silently. A publish
  whose reply was lost is retried, which may store a duplicate with the same message id (deduped by handlers).
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import redis.asyncio as aioredis
import structlog
from redis.exceptions import ResponseError

from roottrading import messages as m
from roottrading.bus.base import BusStats, Handler, RetryPolicy, dead_letter_for, fast_message_id, partition_of
from roottrading.bus.ownership import Ownership
from roottrading.bus.redis_consumer import FIELD as _FIELD
from roottrading.bus.redis_consumer import TRANSIENT as _TRANSIENT
from roottrading.bus.redis_consumer import RedisConsumer

log = structlog.get_logger(__name__)

T = TypeVar("T")
_XADD_MANY = """
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'd', ARGV[i])
end
return #ARGV - 1
"""


def _id_tuple(entry_id: bytes | str) -> tuple[int, int]:
    s = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = s.partition("-")
    return int(ms), int(seq or 0)


class RedisSubscription:
    def __init__(self, consumer: RedisConsumer) -> None:
        self.consumer = consumer
        self.topic, self.group = consumer.topic, consumer.group

    async def stop(self) -> None:
        await self.consumer.stop()


class RedisBus:
    """MessageBus on Redis Streams. See the module docstring for the guarantees and the design."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "rt",
        partitions: int = 4,
        maxlen: int = 100_000,
        retry: RetryPolicy | None = None,
        block_ms: int = 100,
        lease_ms: int = 10_000,
        claim_idle_ms: int | None = None,
        batch: int = 256,
        publish_timeout_s: float = 30.0,
        rebalance_ms: int | None = None,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        if maxlen < 1:
            raise ValueError(f"maxlen must be >= 1, got {maxlen}")
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        if block_ms < 1 or lease_ms < 50:
            raise ValueError(f"block_ms must be >= 1 and lease_ms >= 50 (got {block_ms}, {lease_ms})")
        self.url = url
        self.prefix = prefix
        self.partitions = partitions
        self.maxlen = maxlen
        self.retry = retry or RetryPolicy()
        self.block_ms = block_ms
        self.lease_ms = lease_ms
        self.claim_idle_ms = lease_ms if claim_idle_ms is None else claim_idle_ms
        self.batch = batch
        self.publish_timeout_s = publish_timeout_s
        self.rebalance_ms = rebalance_ms if rebalance_ms is not None else min(lease_ms // 3, 250)
        self.stats = BusStats()
        self._redis: aioredis.Redis | None = None
        self._xadd_many: Any = None  # registered Lua script, bound to the current client
        self._consumers: list[RedisConsumer] = []
        self._streams: set[str] = set()
        self._groups: set[tuple[str, str]] = set()  # (topic, group) joined here: what backlog() reports
        self._closed = False
        self._closing = False
        self.reclaimed = 0  # entries taken over from dead consumers (XPENDING + XCLAIM), for health and tests
        self.ownerships: dict[tuple[str, str], Ownership] = {}  # (topic, group) -> leases exposed to a service

    # --- connection ------------------------------------------------------------------------------------
    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            self._redis = aioredis.Redis.from_url(self.url, decode_responses=False, health_check_interval=5)
        return self._redis

    async def start(self) -> None:
        self._closed = self._closing = False
        _ = self.redis

    def stream(self, topic: str, partition: int) -> str:
        return f"{self.prefix}:{topic}:{partition}"

    async def call(self, op: Callable[[], Awaitable[T]], what: str, timeout_s: float | None = None) -> T:
        """Run a Redis operation, retrying with backoff while Redis is unreachable or loading.

        Raises the last connection error after timeout_s (None: retry until the bus closes)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        delay, warned = 0.02, False
        while True:
            try:
                result = await op()
                if warned:
                    log.info("redis reachable again", op=what)
                return result
            except _TRANSIENT as exc:
                self.stats.errors["connection"] = self.stats.errors.get("connection", 0) + 1
                if deadline is None and self._closing:  # close() must end even if Redis never comes back
                    deadline = time.monotonic() + self.publish_timeout_s
                if deadline is not None and time.monotonic() >= deadline:
                    raise
                if not warned:
                    log.warning("redis unreachable, retrying", op=what, error=repr(exc))
                    warned = True
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)

    # --- publish ---------------------------------------------------------------------------------------
    async def publish(
        self, topic: str, payload: Any, *, key: str | None = None, msg_id: str | None = None, ts: int = 0
    ) -> str:
        msg_id = msg_id or fast_message_id()
        raw = m.encode(topic, payload, key=key, msg_id=msg_id, ts=ts or time.time_ns() // 1_000_000)
        await self.publish_raw(topic, raw, key)
        return msg_id

    async def publish_raw(self, topic: str, raw: bytes, key: str | None) -> None:
        """XADD already-encoded bytes; retries while Redis is down, raises after publish_timeout_s."""
        if self._closed:
            raise RuntimeError("bus is closed")
        name = self.stream(topic, partition_of(key, self.partitions))
        self._streams.add(name)
        r = self.redis
        await self.call(
            lambda: r.xadd(name, {_FIELD: raw}, maxlen=self.maxlen, approximate=True), "publish", self.publish_timeout_s
        )
        self.stats.count_published(topic)

    async def publish_many(self, topic: str, items: Iterable[tuple[Any, str | None]], chunk: int = 1000) -> list[str]:
        """Publish (payload, key) pairs; returns their message ids. For bulk producers (backfills, replays).

        Entries are grouped per partition stream and appended by one Lua script call per (stream, chunk):
        one command and one reply instead of one per entry (redis-py spends ~30 us packing/parsing each),
        and atomic, so a retry after a lost connection re-sends a chunk that was either fully stored or not
        at all (if the reply alone was lost, the duplicates keep their ids). Order per key is kept."""
        if self._closed:
            raise RuntimeError("bus is closed")
        now = time.time_ns() // 1_000_000
        ids: list[str] = []
        P = self.partitions
        script = self._xadd_many
        if script is None:
            script = self._xadd_many = self.redis.register_script(_XADD_MANY)
        it = iter(items)
        while True:  # chunk by chunk: encoding 100k messages at once would starve the loop (and lease renewals)
            per_stream: dict[str, list[bytes]] = {}
            n = 0
            for payload, key in it:
                msg_id = fast_message_id()
                ids.append(msg_id)
                name = self.stream(topic, partition_of(key, P))
                raws = per_stream.get(name)
                if raws is None:
                    raws = per_stream[name] = []
                raws.append(m.encode(topic, payload, key=key, msg_id=msg_id, ts=now))
                n += 1
                if n >= chunk:
                    break
            if not n:
                return ids
            for name, raws in per_stream.items():
                self._streams.add(name)
                await self.call(
                    functools.partial(script, keys=[name], args=[self.maxlen, *raws]),
                    "publish_many",
                    self.publish_timeout_s,
                )
                self.stats.count_published(topic, len(raws))

    # --- subscribe -------------------------------------------------------------------------------------
    def ownership(self, topic: str, group: str) -> Ownership:
        """The partitions of `topic` that this process's member of `group` holds (bus/ownership.py). Ask for it
        before subscribing: the consumer then runs its acquire/release callbacks around every lease change."""
        own = self.ownerships.get((topic, group))
        if own is None:
            own = self.ownerships[(topic, group)] = Ownership(topic, group, self.partitions)
        return own

    async def subscribe(
        self, topic: str, group: str, handler: Handler, *, consumer: str | None = None, from_latest: bool = False
    ) -> RedisSubscription:
        """Join `group` on every partition stream of `topic` (created at id 0). `consumer` names this member in
        XPENDING; it must be unique among live members (default: group + random suffix).

        `from_latest`: a group that does not exist yet starts after the newest entry ($) instead of the oldest.
        For a per-instance (broadcast) group whose state comes from the store at start: replaying a retained
        history of control events or prices into a new instance would re-apply old pauses and stale prices.
        An existing group always continues where it stopped."""
        if self._closed:
            raise RuntimeError("bus is closed")
        m.schema_for(topic)  # a clear error now for an undeclared topic, not a dead letter per message
        r = self.redis
        for p in range(self.partitions):
            name = self.stream(topic, p)
            self._streams.add(name)
            try:
                await self.call(
                    functools.partial(r.xgroup_create, name, group, id="$" if from_latest else "0", mkstream=True),
                    "xgroup_create",
                    self.publish_timeout_s,
                )
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._groups.add((topic, group))
        c = RedisConsumer(self, topic, group, consumer or f"{group}-{uuid.uuid4().hex[:8]}", handler)
        self._consumers.append(c)
        await c.begin()
        return RedisSubscription(c)

    # --- delivery (shared by consumers) ----------------------------------------------------------------
    async def handle(self, topic: str, group: str, raw: bytes | None, handler: Handler, attempt: int = 1) -> None:
        """Decode, run the handler with retries, dead-letter on final failure. Never raises (but cancels)."""
        try:
            if raw is None:
                raise m.MessageError("stream entry has no 'd' field")
            msg = m.decode(raw, attempt)
        except m.MessageError as exc:
            await self.dead_letter(topic, group, "?", raw or b"", f"MessageError: {exc}", 0)
            return
        if attempt > self.retry.max_attempts:
            await self.dead_letter(
                topic,
                group,
                msg.id,
                raw,
                f"delivered {attempt} times without ack (consumer crashed each time?)",
                attempt,
            )
            return
        while True:
            try:
                await handler(msg)
                self.stats.delivered += 1
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
                        id=msg.id,
                        attempts=attempt,
                        error=repr(exc),
                    )
                    await self.dead_letter(topic, group, msg.id, raw, f"{name}: {exc}", attempt)
                    return
                self.stats.retried += 1
                await asyncio.sleep(self.retry.delay(attempt))
                attempt += 1
                msg = m.Message(
                    id=msg.id, topic=msg.topic, key=msg.key, ts=msg.ts, payload=msg.payload, attempt=attempt
                )

    async def dead_letter(self, topic: str, group: str, msg_id: str, raw: bytes, error: str, attempts: int) -> None:
        letter = dead_letter_for(self.stats, topic, group, msg_id, raw, error, attempts)
        if letter is None:
            log.error("dead letter itself failed; left in its stream only", topic=topic, error=error)
            return
        dl_topic, raw_dl, _ = letter
        name = self.stream(dl_topic, partition_of(group, self.partitions))
        self._streams.add(name)
        r = self.redis
        # not publish_raw: it must work while the bus is closing, and retry as long as needed
        await self.call(lambda: r.xadd(name, {_FIELD: raw_dl}, maxlen=self.maxlen, approximate=True), "dead_letter")
        self.stats.count_published(dl_topic)

    # --- drain, health, close --------------------------------------------------------------------------
    async def _settled(self) -> bool:
        names = sorted(self._streams)
        if not names:
            return True
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.xinfo_stream(name)
            pipe.xinfo_groups(name)
        res = await pipe.execute(raise_on_error=False)
        for i in range(0, len(res), 2):
            info, groups = res[i], res[i + 1]
            if isinstance(info, Exception) or isinstance(groups, Exception):
                continue  # stream does not exist (yet): nothing to wait for
            last = _id_tuple(info["last-generated-id"])
            for g in groups:
                if g["pending"] or _id_tuple(g["last-delivered-id"]) < last:
                    return False
        return True

    async def backlog(self) -> dict[tuple[str, str], int]:
        """Messages not yet acknowledged per (topic, group) joined on this bus: XINFO GROUPS' `lag` (entries
        not yet delivered to the group) + `pending` (delivered, not acked), summed over the partition streams.

        One pipelined XINFO GROUPS per partition stream: read at scrape time, never on the message path. A
        group is reported by the process that joined it, so per-service processes do not repeat each other."""
        groups = sorted(self._groups)
        topics = sorted({t for t, _ in groups})
        if not topics:
            return {}
        names = [self.stream(t, p) for t in topics for p in range(self.partitions)]
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.xinfo_groups(name)
        try:
            res = await pipe.execute(raise_on_error=False)
        except _TRANSIENT as exc:  # one shape for the scraper, whatever the broker
            raise ConnectionError(f"redis backlog: {exc!r}") from exc
        wanted = {(t, g.encode()) for t, g in groups}
        out = dict.fromkeys(groups, 0)
        for i, (name, rows) in enumerate(zip(names, res, strict=True)):
            if isinstance(rows, Exception):
                continue  # stream gone (deleted by hand): nothing is waiting in it
            topic = topics[i // self.partitions]
            for row in rows:
                gname = row["name"] if isinstance(row["name"], bytes) else str(row["name"]).encode()
                if (topic, gname) not in wanted:
                    continue
                lag = row.get("lag")
                if lag is None:  # Redis cannot tell (entries deleted mid-stream): count what is past the group
                    lag = await self._count_after(name, row["last-delivered-id"])
                out[(topic, gname.decode())] += int(lag) + int(row["pending"])
        return out

    async def _count_after(self, name: str, last_id: bytes | str) -> int:
        """Entries after `last_id` in a stream, for the rare group whose `lag` Redis reports as unknown."""
        start = last_id.decode() if isinstance(last_id, bytes) else last_id
        entries = await self.redis.xrange(name, min=f"({start}", count=self.maxlen)
        return len(entries or ())

    async def drain(self, timeout: float = 10.0) -> bool:
        """True once every group on the streams this bus touched has read and acked everything."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if await self._settled():
                    return True
            except _TRANSIENT:
                pass
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.005)

    async def health(self) -> dict[str, Any]:
        try:
            await asyncio.wait_for(self.redis.ping(), 2.0)
            status = "ok" if not self._closed else "down"
        except (*_TRANSIENT, TimeoutError):
            status = "down"
        return {
            "status": status,
            "backend": "redis",
            "prefix": self.prefix,
            "partitions": self.partitions,
            "consumers": {f"{c.topic}/{c.group}/{c.name}": sorted(c.held) for c in self._consumers},
            "published": self.stats.published,
            "delivered": self.stats.delivered,
            "dead_lettered": self.stats.dead_lettered,
            "reclaimed": self.reclaimed,
            "errors": dict(self.stats.errors),
        }

    async def close(self) -> None:
        """Stop reading, let in-flight batches finish and ack, give leases back, close the connection.

        The current batch (at most `batch` entries already read into this consumer's pending list) is
        finished rather than abandoned, so nothing waits claim_idle_ms for a takeover; with slow handlers,
        use a small `batch` to keep close() short."""
        self._closing = True
        await asyncio.gather(*(c.stop() for c in list(self._consumers)))
        self._closed = True
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = self._xadd_many = None
