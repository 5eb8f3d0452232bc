"""Active/standby for services that hold a whole-account view (risk, portfolio): one leader at a time.

Why a lease and not partitions: the risk manager judges every order against the whole account (drawdown, daily
loss, open exposure, the kill switch) and the portfolio reconciles every reservation against every cycle; split
by symbol, no instance could judge the account. So every instance keeps the whole view warm and exactly one
of them - the holder of a lease - acts.

Why Redis `SET NX PX` rather than a PostgreSQL advisory lock: several instances are only possible on the Redis
Streams bus (runtime/supervisor.py), so Redis is already there; a lease has an expiry, so a frozen or
partitioned leader loses it by time alone, whereas a session advisory lock is held for as long as the
database keeps the TCP connection open (a half-dead leader can keep it for minutes); and a lease gives
fencing by local time (below), which a lock without expiry cannot.

- Election: `SET key token NX PX lease_ms`. Renewal every lease_ms/3: a compare-and-set script extends the
  key only if it still holds our token. Stop: a compare-and-delete script, so a standby takes over at once.
- Fencing: `is_leader()` is true only until `t + lease_ms - margin`, t being the monotonic time at which the
  SET/renewal that succeeded was SENT. Redis expires the key no earlier than lease_ms after it received the
  command, i.e. after t + lease_ms, so a leader that cannot renew (Redis unreachable, event loop stalled) stops
  acting before any other instance can hold the lease: never two leaders acting at once.
- Takeover: `on_elected` is awaited after the lease is won and BEFORE `is_leader()` turns true: the service
  reloads its state from the store (the durable safety state) first; then the lease is renewed (compare-and-set)
  and only if that succeeds does the instance act. If the reload fails, the lease is given back.
- A bus without Redis (memory: one process; NATS: one instance per service) is always leader: no change.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from roottrading.runtime.instance import instance_name

log = structlog.get_logger(__name__)

Callback = Callable[[], Awaitable[None]]
MARGIN_S = 0.5  # stop acting this long (at most a tenth of the lease) before the lease could expire in Redis

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class NotLeader(Exception):
    """This instance is a standby: the leader (if any is known) must be asked."""

    def __init__(self, service: str, leader: str | None) -> None:
        super().__init__(f"{service}: this instance is a standby; leader: {leader or 'none elected yet'}")
        self.leader = leader


class Leadership:
    """The always-leader of a one-instance bus. The Redis lease below has the same interface."""

    holder = "local"

    def is_leader(self) -> bool:
        return True

    async def start(self) -> None:
        """Nothing to elect."""

    async def stop(self) -> None:
        """Nothing to give back."""

    async def leader(self) -> str | None:
        return self.holder

    def details(self) -> dict[str, Any]:
        return {"role": "leader", "lease": "none (one-instance bus)"}


class RedisLeaderLease(Leadership):
    """A leader lease in Redis. See the module docstring."""

    def __init__(
        self,
        redis: Any,
        key: str,
        lease_ms: int,
        *,
        on_elected: Callback | None = None,
        on_demoted: Callback | None = None,
        holder: str | None = None,
    ) -> None:
        if lease_ms < 50:
            raise ValueError(f"lease_ms must be >= 50, got {lease_ms}")
        self.redis, self.key, self.lease_ms = redis, key, lease_ms
        self.lease_s = lease_ms / 1000
        self.holder = holder or f"{instance_name()}/{uuid.uuid4().hex[:8]}"
        self.on_elected, self.on_demoted = on_elected, on_demoted
        self._until: float | None = None  # monotonic deadline; set only once on_elected has run
        self._task: asyncio.Task[None] | None = None
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self.elections = 0

    # --- queries ------------------------------------------------------------------------------------------
    def is_leader(self) -> bool:
        return self._until is not None and time.monotonic() < self._until

    async def leader(self) -> str | None:
        """The token of the current holder (`instance/random`), or None. A read, not a promise."""
        try:
            raw = await self.redis.get(self.key)
        except (RedisConnectionError, RedisTimeoutError, OSError):
            return None
        return raw.decode() if isinstance(raw, bytes) else raw

    def details(self) -> dict[str, Any]:
        left = None if self._until is None else max(0.0, self._until - time.monotonic())
        return {
            "role": "leader" if self.is_leader() else "standby",
            "holder": self.holder,
            "lease_ms": self.lease_ms,
            "valid_for_s": left,
            "elections": self.elections,
        }

    # --- lifecycle ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """One attempt now (a lone instance is leader when start returns), then the renewal loop."""
        await self.tick()
        self._task = asyncio.create_task(self._loop(), name=f"leader-lease:{self.key}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        was = self._until is not None
        self._until = None
        if was:
            with contextlib.suppress(RedisError, OSError):
                await self._release(keys=[self.key], args=[self.holder])

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            await self.tick()

    async def tick(self) -> None:
        """Renew (leader) or try to take (standby) the lease; demote when the local deadline has passed."""
        started = time.monotonic()
        try:
            if self._until is not None:
                ok = bool(await self._renew(keys=[self.key], args=[self.holder, self.lease_ms]))
            else:
                ok = bool(await self.redis.set(self.key, self.holder, nx=True, px=self.lease_ms))
        except (RedisError, OSError) as exc:
            log.warning("leader lease: redis unreachable", key=self.key, error=repr(exc))
            if self._until is not None and time.monotonic() >= self._until:
                await self._demote("lease could not be renewed in time")
            return
        if self._until is not None:
            if ok:
                self._until = started + self.lease_s - min(MARGIN_S, self.lease_s / 10)
            else:
                await self._demote("lease held by another instance")
            return
        if ok:
            await self._elected(started)

    async def _elected(self, started: float) -> None:
        try:
            if self.on_elected is not None:
                await self.on_elected()  # reload from the store before acting
        except Exception as exc:  # noqa: BLE001 - any failure: do not lead on a state that was not loaded
            log.error("leader lease: state reload failed; lease given back", key=self.key, error=repr(exc))
            with contextlib.suppress(RedisError, OSError):
                await self._release(keys=[self.key], args=[self.holder])
            return
        # renew at once: the reload took time, and the lease must still be ours (not expired and taken) to act
        started = time.monotonic()
        try:
            ok = bool(await self._renew(keys=[self.key], args=[self.holder, self.lease_ms]))
        except (RedisError, OSError) as exc:
            log.warning("leader lease: redis unreachable after the reload; trying again", key=self.key, error=repr(exc))
            return
        if not ok:
            log.warning("leader lease: lost during the state reload; trying again", key=self.key)
            return
        self._until = started + self.lease_s - min(MARGIN_S, self.lease_s / 10)
        self.elections += 1
        log.warning("leader lease acquired: this instance acts now", key=self.key, holder=self.holder)

    async def _demote(self, why: str) -> None:
        self._until = None
        log.warning("leader lease lost: this instance stops acting", key=self.key, holder=self.holder, why=why)
        if self.on_demoted is not None:
            try:
                await self.on_demoted()
            except Exception as exc:  # noqa: BLE001 - the demotion stands anyway
                log.error("leader lease: demotion callback failed", key=self.key, error=repr(exc))


def leadership_for(
    ctx: Any, service: str, *, on_elected: Callback | None = None, on_demoted: Callback | None = None
) -> Leadership:
    """The lease of `service` on this context's bus: Redis -> a lease `{prefix}:leader:{service}` of the bus's
    lease_ms; any other bus -> always leader (on_elected is NOT called: the service loads at start as before)."""
    from roottrading.bus.redis import RedisBus

    bus = ctx.bus
    if not isinstance(bus, RedisBus):
        return Leadership()
    return RedisLeaderLease(
        bus.redis, f"{bus.prefix}:leader:{service}", bus.lease_ms, on_elected=on_elected, on_demoted=on_demoted
    )
