"""The consumer side of the Redis Streams bus: partition leases, sequential reading, acks, takeover.

See roottrading/bus/redis.py for the design. One RedisConsumer is one member of a consumer group."""

from __future__ import annotations

import asyncio
import math
import random
import time
import uuid
from typing import TYPE_CHECKING, Any, cast

import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from roottrading.bus.base import Handler

if TYPE_CHECKING:
    from redis.typing import StreamIdT

    from roottrading.bus.redis import RedisBus

log = structlog.get_logger(__name__)

TRANSIENT = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)
FIELD = b"d"
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
# Non-blocking XREADGROUP of every held stream inside Redis, returning per stream with entries:
# index, "id id id", "<len>:<raw><len>:<raw>..." (len "-" = entry without the data field). Three bulk strings
# per batch instead of five RESP elements per entry: redis-py's pure-Python parser was 75% of consumer CPU.
_READ_MANY = """
local out = {}
for i = 1, #KEYS do
  local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[i], '>')
  if r then
    local ids, parts = {}, {}
    for j, e in ipairs(r[1][2]) do
      ids[j] = e[1]
      local f, raw = e[2], nil
      for k = 1, #f, 2 do if f[k] == 'd' then raw = f[k + 1] end end
      if raw then parts[j] = #raw .. ':' .. raw else parts[j] = '-:' end
    end
    if #ids > 0 then
      out[#out + 1] = tostring(i - 1)
      out[#out + 1] = table.concat(ids, ' ')
      out[#out + 1] = table.concat(parts)
    end
  end
end
return out
"""
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def unpack(ids_blob: bytes, data: bytes) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Entries of a _READ_MANY batch, in the (id, fields) shape XREADGROUP gives."""
    out: list[tuple[bytes, dict[bytes, bytes]]] = []
    pos = 0
    for entry_id in ids_blob.split(b" "):
        j = data.index(b":", pos)
        size = data[pos:j]
        if size == b"-":
            out.append((entry_id, {}))
            pos = j + 1
        else:
            end = j + 1 + int(size)
            out.append((entry_id, {FIELD: data[j + 1 : end]}))
            pos = end
    return out


class RedisConsumer:
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
        self.active: set[int] = set()  # partitions whose stream holds entries (see balance)
        self.seen_free: set[int] = set()  # active partitions found free by the previous balance
        self.given_back: dict[int, float] = {}  # active partition -> monotonic time before which we leave it
        self._read_many = bus.redis.register_script(_READ_MANY)
        self.own = bus.ownerships.get((topic, group))  # a service watching which partitions it holds

    def lease_key(self, p: int) -> str:
        return f"{self.bus.prefix}:lease:{self.topic}:{self.group}:{p}"

    async def begin(self) -> None:
        await self.bus.call(self.heartbeat_once, "join", self.bus.publish_timeout_s)
        await self.bus.call(self.balance, "balance", self.bus.publish_timeout_s)
        self.task = asyncio.create_task(self.run(), name=f"bus:{self.topic}:{self.group}:{self.name}")
        self.hb_task = asyncio.create_task(self.heartbeat(), name=f"bus-hb:{self.topic}:{self.group}:{self.name}")

    # --- leases --------------------------------------------------------------------------------------
    async def heartbeat_once(self) -> None:
        r, now, started = self.bus.redis, int(time.time() * 1000), time.monotonic()
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
                if self.own is not None:
                    await self.own.releasing({p})
            elif ok and self.own is not None and p in self.held:
                self.own.renewed(p, started, self.bus.lease_ms / 1000)

    async def heartbeat(self) -> None:
        while not self.stopping:
            await asyncio.sleep(self.bus.lease_ms / 3000)
            try:
                await self.heartbeat_once()
            except (*TRANSIENT, ResponseError) as exc:  # retried on the next beat
                log.warning("lease heartbeat failed", topic=self.topic, group=self.group, error=repr(exc))

    async def balance(self) -> None:
        """Keep ceil(P / live members) leases: give back extras, take free ones.

        Load is where the entries are: a topic per symbol (market.candles.BTCUSDT, keyed by its symbol) puts
        every entry in ONE of its P partition streams, so splitting each topic's partitions evenly can leave
        every busy partition with one process (all of them when the symbols' partitions are the low ones
        everyone keeps). So when this bus has one consumer per topic in the group (a service subscribing to
        many topics) and other members are live, the partitions holding entries ("active") are shared across
        the group's topics: this process keeps at most ceil(active in the group / live) of them, gives the
        rest back (one per round, after acking its batch, as any extra lease) and takes free ones while under
        that share. Idle partitions are spread per topic as before. A free active partition that stays free
        for two rounds is taken whatever the share, so a disagreement between members (a member joining or
        leaving mid-round) can delay a hand-over but never leave a partition unread."""
        r, P = self.bus.redis, self.bus.partitions
        now = int(time.time() * 1000)
        live = max(1, await r.zcount(self.members_key, now, "+inf"))
        peers = self._peers()
        free: set[int] = set()
        if peers is not None:  # also alone on this topic: the other topics' shares count what it holds
            self.active, free = await self._partition_state()
        if live == 1 or peers is None or not self.active:
            await self._balance_topic(math.ceil(P / live))
        else:
            await self._balance_group(peers, live, free)
        self.next_balance = time.monotonic() + self.bus.rebalance_ms / 1000

    def _peers(self) -> list[RedisConsumer] | None:
        """This bus's live consumers of the group, or None when a topic has several of them here (each then
        balances within its topic only: the group share below counts one consumer per topic)."""
        peers = [c for c in self.bus._consumers if c.group == self.group and not c.stopping]
        if self not in peers:
            peers.append(self)
        return peers if len({c.topic for c in peers}) == len(peers) else None

    async def _partition_state(self) -> tuple[set[int], set[int]]:
        """(partitions whose stream holds entries, partitions nobody leases), in one round trip."""
        P = self.bus.partitions
        pipe = self.bus.redis.pipeline(transaction=False)
        for p in range(P):
            pipe.xlen(self.bus.stream(self.topic, p))
        pipe.mget([self.lease_key(p) for p in range(P)])
        res = await pipe.execute()
        return {p for p in range(P) if res[p]}, {p for p, holder in enumerate(res[P]) if holder is None}

    async def _release(self, p: int) -> None:
        del self.held[p]
        if self.own is not None:  # the service lets go of the partition's state before anyone can take it
            await self.own.releasing({p})
        await self.bus.redis.eval(_RELEASE, 1, self.lease_key(p), self.token)

    async def _take(self, p: int) -> bool:
        started = time.monotonic()
        if not await self.bus.redis.set(self.lease_key(p), self.token, nx=True, px=self.bus.lease_ms):
            return False
        self.held[p] = False  # renewed by the heartbeat from now on, even while the service loads
        # the service loads the partition's state before a single entry of it is read
        if self.own is not None and not await self.own.acquired({p}, started, self.bus.lease_ms / 1000):
            self.held.pop(p, None)
            await self.bus.redis.eval(_RELEASE, 1, self.lease_key(p), self.token)
            return False
        return True

    async def _balance_topic(self, target: int) -> None:
        P = self.bus.partitions
        while len(self.held) > target:
            await self._release(max(self.held))
        if len(self.held) < target:
            for i in range(P):
                p = (self.offset + i) % P
                if p not in self.held and await self._take(p) and len(self.held) >= target:
                    break

    async def _balance_group(self, peers: list[RedisConsumer], live: int, free: set[int]) -> None:
        P, active = self.bus.partitions, self.active
        share = math.ceil(sum(len(c.active) for c in peers) / live)

        def busy() -> int:  # active partitions this process holds in the group, across its topics
            return sum(1 for c in peers for p in c.held if p in c.active)

        idle_target = math.ceil((P - len(active)) / live)
        held_idle = sorted(p for p in self.held if p not in active)
        while len(held_idle) > idle_target:
            await self._release(held_idle.pop())
        held_active = [p for p in self.held if p in active]
        if held_active and busy() > share:
            p = max(held_active)
            await self._release(p)
            self.given_back[p] = time.monotonic() + 3 * self.bus.rebalance_ms / 1000
        free_active: set[int] = set()
        for i in range(P):
            p = (self.offset + i) % P
            if p in self.held or p not in free:  # leased by another member (or by us: released just now)
                continue
            if p in active:
                if time.monotonic() < self.given_back.get(p, 0.0):
                    continue
                if (busy() < share or p in self.seen_free) and await self._take(p):
                    continue
                free_active.add(p)
            elif sum(1 for q in self.held if q not in active) < idle_target:
                await self._take(p)
        self.seen_free = free_active

    # --- reading -------------------------------------------------------------------------------------
    async def run(self) -> None:
        bus, r = self.bus, self.bus.redis
        delay, backlog = 0.02, False
        while not self.stopping:
            try:
                if not self.held or time.monotonic() >= self.next_balance:
                    await self.balance()
                for p in [p for p, ok in self.held.items() if not ok]:
                    await self.recover(p)
                if not self.held:
                    await asyncio.sleep(bus.block_ms / 1000)
                    continue
                held = list(self.held)
                names = [bus.stream(self.topic, p) for p in held]
                # busy: one script call returns packed batches (cheap to parse); idle: block for new entries
                packed = None
                if backlog:
                    packed = await self._read_many(keys=names, args=[self.group, self.name, bus.batch])
                if packed:
                    for i in range(0, len(packed), 3):
                        await self.process(held[int(packed[i])], unpack(packed[i + 1], packed[i + 2]), None)
                else:
                    resp = cast(  # redis-py types every protocol's reply; ours is RESP2: [[stream, entries]]
                        "list[tuple[bytes, list[Any]]] | None",
                        await r.xreadgroup(
                            self.group, self.name, dict.fromkeys(names, ">"), count=bus.batch, block=bus.block_ms
                        ),
                    )
                    got = 0
                    for name, entries in resp or ():
                        got += len(entries)
                        await self.process(int(name.rsplit(b":", 1)[1]), entries, None)
                    backlog = got >= 16  # a trickle stays on the blocking read: one round trip less per message
                delay = 0.02
            except TRANSIENT as exc:
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
            except TRANSIENT:
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
            await bus.handle(self.topic, self.group, fields.get(FIELD), self.handler, attempt)
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
        """Re-process what earlier holders of partition p left pending, in id order, before new entries.

        XPENDING lists the pending entries in id order; the claimable prefix (ours from a lost lease, or idle
        >= claim_idle_ms) is taken with XCLAIM and handled. XAUTOCLAIM is not used because it skips entries
        that are too fresh and claims later ones, which would break per-key order; here we wait instead."""
        bus, r = self.bus, self.bus.redis
        name = bus.stream(self.topic, p)
        me = self.name.encode()
        while p in self.held:
            rows: list[dict[str, Any]] = await r.xpending_range(name, self.group, "-", "+", bus.batch)
            if not rows:
                self.held[p] = True
                return
            ids: list[StreamIdT] = []
            attempts: dict[bytes, int] = {}
            for row in rows:
                if row["consumer"] != me and row["time_since_delivered"] < bus.claim_idle_ms:
                    break  # an earlier holder may still be finishing it: wait rather than reorder
                ids.append(row["message_id"])
                attempts[row["message_id"]] = int(row["times_delivered"]) + 1  # XCLAIM counts a delivery
            if not ids:
                await asyncio.sleep(min(0.05, bus.claim_idle_ms / 4000))
                continue
            claimed = cast("list[tuple[bytes, Any]]", await r.xclaim(name, self.group, self.name, 0, ids))
            entries = [(eid, fields) for eid, fields in claimed if fields is not None]
            lost = len(ids) - len(entries)
            if lost:  # trimmed by MAXLEN before anyone handled them; Redis 7 drops them from the PEL
                bus.stats.errors["trimmed"] = bus.stats.errors.get("trimmed", 0) + lost
                log.error("pending entries trimmed before being handled", stream=name, count=lost)
                await r.xack(name, self.group, *(set(ids) - {eid for eid, _ in entries}))
            bus.reclaimed += len(entries)
            log.info("reclaimed pending entries", stream=name, group=self.group, count=len(entries))
            await self.process(p, entries, attempts)

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
        if self.own is not None and self.held:
            await self.own.releasing(set(self.held))
        try:
            pipe = self.bus.redis.pipeline(transaction=False)
            for p in list(self.held):
                pipe.eval(_RELEASE, 1, self.lease_key(p), self.token)
            pipe.zrem(self.members_key, self.token)
            await pipe.execute()
        except TRANSIENT:
            log.warning("could not release leases on stop; they expire", topic=self.topic, group=self.group)
        self.held.clear()
