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
  before reading new entries (`>`), reclaims the partition's pending entries with XAUTOCLAIM (min-idle =
  claim_idle_ms, default lease_ms) and re-processes them in id order. Entries still too fresh to claim are
  waited for, so order is kept. XPENDING's delivery count becomes `Message.attempt`; a message delivered more
  than `retry.max_attempts` times without an ack (a poison message that kills its consumers) is dead-lettered.
* Ack: XACK after the handler returns (batched per stream). A raising handler is retried in place with backoff,
  then the raw entry and the error are published to `deadletter.<topic>` *before* the XACK. An entry that
  cannot be decoded is dead-lettered at once. Delivery is therefore at least once; message ids (stable
  across publish retries) let handlers be idempotent.
* Bounded length: XADD MAXLEN ~ maxlen. A group lagging more than maxlen entries loses the trimmed ones (logged
  as errors["trimmed"]); size maxlen for the worst backlog you accept.
* Redis restarts: every command retries on ConnectionError/TimeoutError/LOADING with exponential backoff.
  publish retries until publish_timeout_s and then raises: it never drops a message silently. A publish
  whose reply was lost is retried, which may store a duplicate with the same message id (deduped by handlers).
"""

from __future__ import annotations

import asyncio
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import redis.asyncio as aioredis
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from roottrading import messages as m
from roottrading.bus.base import BusStats, Handler, RetryPolicy, fast_message_id, partition_of

log = structlog.get_logger(__name__)

T = TypeVar("T")
_TRANSIENT = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
_FIELD = b"d"
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def _id_tuple(entry_id: bytes | str) -> tuple[int, int]:
    s = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = s.partition("-")
    return int(ms), int(seq or 0)


class RedisSubscription:
    def __init__(self, consumer: "_Consumer") -> None:
        self.consumer = consumer
        self.topic, self.group = consumer.topic, consumer.group

    async def stop(self) -> None:
        await self.consumer.stop()


class RedisBus:
    """MessageBus on Redis Streams. See the module docstring for the guarantees and the design."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, prefix: str = "rt", partitions: int = 4,
                 maxlen: int = 100_000, retry: RetryPolicy | None = None, block_ms: int = 100,
                 lease_ms: int = 3_000, claim_idle_ms: int | None = None, batch: int = 256,
                 publish_timeout_s: float = 30.0, rebalance_ms: int | None = None) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        if maxlen < 1:
            raise ValueError(f"maxlen must be >= 1, got {maxlen}")
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
        self._consumers: list[_Consumer] = []
        self._streams: set[str] = set()
        self._closed = False
        self._closing = False
        self.reclaimed = 0  # entries taken over from dead consumers (XAUTOCLAIM), for health and tests

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
    async def publish(self, topic: str, payload: Any, *, key: str | None = None, msg_id: str | None = None,
                      ts: int = 0) -> str:
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
        await self.call(lambda: r.xadd(name, {_FIELD: raw}, maxlen=self.maxlen, approximate=True),
                        "publish", self.publish_timeout_s)
        self.stats.published += 1

    async def publish_many(self, topic: str, items: Iterable[tuple[Any, str | None]], chunk: int = 1000
                           ) -> list[str]:
        """Publish (payload, key) pairs with pipelined XADDs (one round trip per chunk); returns message ids.

        On a connection error the whole chunk is re-sent (duplicates keep their ids, order per key holds)."""
        if self._closed:
            raise RuntimeError("bus is closed")
        now = time.time_ns() // 1_000_000
        ids: list[str] = []
        rows: list[tuple[str, bytes]] = []
        for payload, key in items:
            msg_id = fast_message_id()
            ids.append(msg_id)
            rows.append((self.stream(topic, partition_of(key, self.partitions)),
                         m.encode(topic, payload, key=key, msg_id=msg_id, ts=now)))
        r = self.redis
        for i in range(0, len(rows), chunk):
            part = rows[i:i + chunk]
            self._streams.update(name for name, _ in part)

            async def send(part: list[tuple[str, bytes]] = part) -> None:
                pipe = r.pipeline(transaction=False)
                for name, raw in part:
                    pipe.xadd(name, {_FIELD: raw}, maxlen=self.maxlen, approximate=True)
                await pipe.execute()

            await self.call(send, "publish_many", self.publish_timeout_s)
            self.stats.published += len(part)
        return ids

    # --- subscribe -------------------------------------------------------------------------------------
    async def subscribe(self, topic: str, group: str, handler: Handler, *, consumer: str | None = None
                        ) -> RedisSubscription:
        if self._closed:
            raise RuntimeError("bus is closed")
        m.schema_for(topic)  # a clear error now for an undeclared topic, not a dead letter per message
        r = self.redis
        for p in range(self.partitions):
            name = self.stream(topic, p)
            self._streams.add(name)
            try:
                await self.call(lambda name=name: r.xgroup_create(name, group, id="0", mkstream=True),
                                "xgroup_create", self.publish_timeout_s)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        c = _Consumer(self, topic, group, consumer or f"{group}-{uuid.uuid4().hex[:8]}", handler)
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
            await self.dead_letter(topic, group, msg.id, raw,
                                   f"delivered {attempt} times without ack (consumer crashed each time?)", attempt)
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
                    log.warning("handler failed, dead-lettering", topic=topic, group=group, id=msg.id,
                                attempts=attempt, error=repr(exc))
                    await self.dead_letter(topic, group, msg.id, raw, f"{name}: {exc}", attempt)
                    return
                self.stats.retried += 1
                await asyncio.sleep(self.retry.delay(attempt))
                attempt += 1
                msg = m.Message(id=msg.id, topic=msg.topic, key=msg.key, ts=msg.ts, payload=msg.payload,
                                attempt=attempt)

    async def dead_letter(self, topic: str, group: str, msg_id: str, raw: bytes, error: str, attempts: int) -> None:
        self.stats.dead_lettered += 1
        if topic.startswith(m.DEAD_LETTER):
            log.error("dead letter itself failed; left in its stream only", topic=topic, error=error)
            return
        dl = m.DeadLetter(topic=topic, group=group, message_id=msg_id, error=error[:2000], attempts=attempts,
                          raw=raw.decode("utf-8", "replace"), time=time.time_ns() // 1_000_000)
        dl_topic = m.dead_letter_topic(topic)
        raw_dl = m.encode(dl_topic, dl, key=group, msg_id=fast_message_id(), ts=dl.time)
        name = self.stream(dl_topic, partition_of(group, self.partitions))
        self._streams.add(name)
        r = self.redis
        # not publish_raw: it must work while the bus is closing, and retry as long as needed
        await self.call(lambda: r.xadd(name, {_FIELD: raw_dl}, maxlen=self.maxlen, approximate=True), "dead_letter")
        self.stats.published += 1

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
        return {"status": status, "backend": "redis", "prefix": self.prefix, "partitions": self.partitions,
                "consumers": {f"{c.topic}/{c.group}/{c.name}": sorted(c.held) for c in self._consumers},
                "published": self.stats.published, "delivered": self.stats.delivered,
                "dead_lettered": self.stats.dead_lettered, "reclaimed": self.reclaimed,
                "errors": dict(self.stats.errors)}

    async def close(self) -> None:
        """Stop reading, let in-flight batches finish and ack, give leases back, close the connection."""
        self._closing = True
        for c in list(self._consumers):
            await c.stop()
        self._closed = True
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


class _Consumer:
    """One member of a consumer group: holds partition leases and reads them sequentially."""

    def __init__(self, bus: RedisBus, topic: str, group: str, name: str, handler: Handler) -> None:
        self.bus, self.topic, self.group, self.name, self.handler = bus, topic, group, name, handler
        self.token = f"{name}:{uuid.uuid4().hex}"
        self.held: dict[int, bool] = {}  # partition -> recovered (pending entries re-processed)
        self.stopping = False
        self.task: asyncio.Task[None] | None = None
        self.hb_task: asyncio.Task[None] | None = None
        self.members_key = f"{bus.prefix}:members:{topic}:{group}"
        self.next_balance = 0.0
        self.offset = random.randrange(bus.partitions)

    def lease_key(self, p: int) -> str:
        return f"{self.bus.prefix}:lease:{self.topic}:{self.group}:{p}"

    async def begin(self) -> None:
        await self.bus.call(self.heartbeat_once, "join", self.bus.publish_timeout_s)
        await self.bus.call(self.balance, "balance", self.bus.publish_timeout_s)
        self.task = asyncio.create_task(self.run(), name=f"bus:{self.topic}:{self.group}:{self.name}")
        self.hb_task = asyncio.create_task(self.heartbeat(), name=f"bus-hb:{self.topic}:{self.group}:{self.name}")

    # --- leases --------------------------------------------------------------------------------------
    async def heartbeat_once(self) -> None:
        r, now = self.bus.redis, int(time.time() * 1000)
        held = list(self.held)
        pipe = r.pipeline(transaction=False)
        pipe.zadd(self.members_key, {self.token: now + self.bus.lease_ms})
        pipe.zremrangebyscore(self.members_key, "-inf", now)
        pipe.pexpire(self.members_key, self.bus.lease_ms * 10)
        for p in held:
            pipe.eval(_RENEW, 1, self.lease_key(p), self.token, self.bus.lease_ms)
        res = await pipe.execute()
        for p, ok in zip(held, res[3:], strict=True):
            if not ok and p in self.held:
                log.warning("lease lost", topic=self.topic, group=self.group, consumer=self.name, partition=p)
                del self.held[p]

    async def heartbeat(self) -> None:
        while not self.stopping:
            await asyncio.sleep(self.bus.lease_ms / 3000)
            try:
                await self.heartbeat_once()
            except (*_TRANSIENT, ResponseError) as exc:  # retried on the next beat
                log.warning("lease heartbeat failed", topic=self.topic, group=self.group, error=repr(exc))

    async def balance(self) -> None:
        """Keep ceil(P / live members) leases: give back extras, take free ones."""
        r, P = self.bus.redis, self.bus.partitions
        now = int(time.time() * 1000)
        live = max(1, await r.zcount(self.members_key, now, "+inf"))
        target = math.ceil(P / live)
        while len(self.held) > target:
            p = max(self.held)
            del self.held[p]
            await r.eval(_RELEASE, 1, self.lease_key(p), self.token)
        if len(self.held) < target:
            for i in range(P):
                p = (self.offset + i) % P
                if p in self.held:
                    continue
                if await r.set(self.lease_key(p), self.token, nx=True, px=self.bus.lease_ms):
                    self.held[p] = False
                    if len(self.held) >= target:
                        break
        self.next_balance = time.monotonic() + self.bus.rebalance_ms / 1000

    # --- reading -------------------------------------------------------------------------------------
    async def run(self) -> None:
        bus, r = self.bus, self.bus.redis
        delay = 0.02
        while not self.stopping:
            try:
                if not self.held or time.monotonic() >= self.next_balance:
                    await self.balance()
                for p in [p for p, ok in self.held.items() if not ok]:
                    await self.recover(p)
                if not self.held:
                    await asyncio.sleep(bus.block_ms / 1000)
                    continue
                streams = {bus.stream(self.topic, p): ">" for p in self.held}
                resp = await r.xreadgroup(self.group, self.name, streams, count=bus.batch, block=bus.block_ms)
                for name, entries in resp or ():
                    p = int(name.rsplit(b":", 1)[1])
                    await self.process(p, entries, None)
                delay = 0.02
            except _TRANSIENT as exc:
                if self.stopping:
                    break
                bus.stats.errors["connection"] = bus.stats.errors.get("connection", 0) + 1
                log.warning("consumer lost redis, retrying", topic=self.topic, group=self.group, error=repr(exc))
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)
            except ResponseError as exc:  # e.g. NOGROUP after Redis lost its data: recreate, never die
                bus.stats.errors["response"] = bus.stats.errors.get("response", 0) + 1
                log.error("consumer got a redis error", topic=self.topic, group=self.group, error=str(exc))
                if "NOGROUP" in str(exc):
                    await self.create_groups()
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)

    async def create_groups(self) -> None:
        r = self.bus.redis
        for p in range(self.bus.partitions):
            try:
                await r.xgroup_create(self.bus.stream(self.topic, p), self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            except _TRANSIENT:
                return  # the run loop retries

    async def process(self, p: int, entries: list[Any], attempts: dict[bytes, int] | None) -> None:
        """Handle entries of one partition in order; ack them in batches after their handler returned."""
        bus = self.bus
        name = bus.stream(self.topic, p)
        acks: list[bytes] = []
        flushed = time.monotonic()
        for entry_id, fields in entries:
            if p not in self.held:
                break  # lease lost: the new holder reclaims the rest, in order
            attempt = attempts.get(entry_id, 1) if attempts else 1
            await bus.handle(self.topic, self.group, fields.get(_FIELD), self.handler, attempt)
            acks.append(entry_id)
            if len(acks) >= bus.batch or time.monotonic() - flushed > 0.05:
                await self.ack(name, acks)
                acks, flushed = [], time.monotonic()
        if acks:
            await self.ack(name, acks)

    async def ack(self, name: str, ids: list[bytes]) -> None:
        r = self.bus.redis
        await self.bus.call(lambda: r.xack(name, self.group, *ids), "xack")

    async def recover(self, p: int) -> None:
        """Re-process what earlier holders of partition p left pending, in id order, before new entries."""
        bus, r = self.bus, self.bus.redis
        name = bus.stream(self.topic, p)
        while p in self.held:
            start: bytes | str = "0-0"
            while True:
                nxt, entries, deleted = await r.xautoclaim(name, self.group, self.name, bus.claim_idle_ms,
                                                           start_id=start, count=bus.batch)
                if deleted:
                    bus.stats.errors["trimmed"] = bus.stats.errors.get("trimmed", 0) + len(deleted)
                    log.error("pending entries trimmed before being handled", stream=name, count=len(deleted))
                if entries:
                    rows = await r.xpending_range(name, self.group, entries[0][0], entries[-1][0], len(entries))
                    attempts = {row["message_id"]: int(row["times_delivered"]) for row in rows}
                    bus.reclaimed += len(entries)
                    log.info("reclaimed pending entries", stream=name, group=self.group, count=len(entries))
                    await self.process(p, entries, attempts)
                if nxt in (b"0-0", "0-0"):
                    break
                start = nxt
            summary = await r.xpending(name, self.group)
            if not summary["pending"]:
                self.held[p] = True
                return
            await asyncio.sleep(min(0.05, bus.claim_idle_ms / 4000))  # entries too fresh to claim: wait

    async def stop(self) -> None:
        """Finish the current batch, ack it, give the leases back and leave the group's members."""
        if self.stopping:
            return
        self.stopping = True
        if self.hb_task is not None:
            self.hb_task.cancel()  # only renews leases: safe to interrupt
            await asyncio.gather(self.hb_task, return_exceptions=True)
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)
        if self in self.bus._consumers:
            self.bus._consumers.remove(self)
        try:
            pipe = self.bus.redis.pipeline(transaction=False)
            for p in list(self.held):
                pipe.eval(_RELEASE, 1, self.lease_key(p), self.token)
            pipe.zrem(self.members_key, self.token)
            await pipe.execute()
        except _TRANSIENT:
            log.warning("could not release leases on stop; they expire", topic=self.topic, group=self.group)
        self.held.clear()
