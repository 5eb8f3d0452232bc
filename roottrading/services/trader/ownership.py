"""Which symbols this trader instance manages, and what a takeover or a hand-over does.

Rule (issue 18): a cycle and its orders belong to the instance that holds the partition of its symbol in the
trader group of `order.requests` (bus/ownership.py: Redis Streams partition leases). That instance alone
handles the symbol's requests, walks its stops on prices, applies its exchange updates and reconciles its
orders; the other instances leave them alone even though they see the same account's update stream and the
same store. Why the bus's leases rather than a leader lease in Redis/PostgreSQL: they already exist, they
already decide who reads a symbol's requests (per-symbol order), and they split the symbols across instances
(a leader lease would leave one instance doing all the work and the others idle).

- Takeover (partition acquired, awaited by the bus before any entry of it is read): the open cycles of its
  symbols are loaded from the store (their stops are watched at once, their exit requests find a position),
  re-announced, and reconciled with the exchange (exits in flight of the previous owner are adopted). With the
  kill switch on, the ACTIVE positions taken over are sold at once, as the kill switch did in their old owner.
- Hand-over (partition released, awaited before the lease is given back) or lease lost: the cycles of its
  symbols are dropped from memory under the trader's lock, so nothing of ours is in progress for them when
  the next owner starts.
- The re-send guard: an intent the exchange does not know is re-sent only once older than the exchange's
  send timeout on the platform clock (from its stored created_at): younger, its sender may still be sending it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from roottrading import messages as m
from roottrading.bus.ownership import Ownership
from roottrading.domain import CycleStatus
from roottrading.services.trader.orders import digest

if TYPE_CHECKING:
    from roottrading.services.trader.core import TraderCore

__all__ = ["Ownership", "TakeOver", "everything_owned", "resend_guard_ms"]

log = structlog.get_logger(__name__)
DEFAULT_SEND_TIMEOUT_S = 10.0  # an exchange that does not say how long a send may take (the Binance default)
GUARD_MARGIN_MS = 1_000


def everything_owned() -> Ownership:
    """One trader per account (memory bus, tests, backtests): every symbol is its own."""
    return Ownership("order.requests", "trader", 1, everything=True)


def resend_guard_ms(exchange: Any) -> int:
    """Minimum age of an intent before reconciliation may re-send it: the exchange's send timeout + a margin."""
    timeout_s = getattr(exchange, "send_timeout_s", None)
    if not isinstance(timeout_s, int | float):
        timeout_s = DEFAULT_SEND_TIMEOUT_S
    return int(timeout_s * 1000) + GUARD_MARGIN_MS


class TakeOver:
    """Drives a TraderCore from the bus's partition ownership (see the module docstring)."""

    def __init__(self, core: TraderCore, ownership: Ownership) -> None:
        self.core, self.ownership = core, ownership
        core.owner = ownership
        ownership.on_acquire(self.acquired)
        ownership.on_release(self.released)
        self.takeovers = 0
        self.handovers = 0

    async def acquired(self, partitions: set[int]) -> None:
        core = self.core
        if not core.started:  # the trader's own start() loads what it owns by then
            return
        if not self.ownership.keys_of(partitions, core.rules):
            return  # none of our symbols lives there: nothing to load or reconcile
        async with core.lock:
            loaded = await core._load()
            if core.killed:  # the kill switch is on: positions taken over are closed too (not entries in flight:
                for cid in loaded:  # their sender may still be sending them; the stops manage what they open)
                    c = core.open.get(cid)
                    if c is not None and c.status is CycleStatus.ACTIVE and c.close_reason is None:
                        await core.start_exit(c, "kill_switch")
        for cid in loaded:  # as after a restart: consumers dedupe by content-hash ids
            c = core.open.get(cid)
            if c is not None:
                await core.publish(m.CYCLE_UPDATES, c, key=c.symbol, msg_id=f"{c.id}:{c.status.value}:{digest(c)}")
        log.info("partitions taken over", partitions=sorted(partitions), open_cycles_loaded=len(loaded))
        await core.reconcile()  # the previous owner's orders in flight: adopted, young intents left alone
        self.takeovers += 1  # counted once reconciled (tests and operators wait on it through /health)

    async def tell_others(self, action: str) -> None:
        """A pause or resume asked on this instance's HTTP route, for every trader instance: published on
        `risk.events` as the user's (rule "user" / "resume"), which each applies idempotently (service.on_risk).
        Not with one instance for everything (memory bus, NATS): applying it locally was all there was to do."""
        if self.ownership.everything:
            return
        rule = "resume" if action == "resume" else "user"
        ev = m.RiskEvent(time=self.core.clock.now_ms(), rule=rule, action=action, message=f"{action} asked by a user")
        await self.core.publish(m.RISK_EVENTS, ev, key=rule)

    def health(self) -> dict[str, object]:
        own = self.ownership
        if own.everything:
            return {"owns": "all"}
        return {"owns": sorted(own.owned_partitions()), "takeovers": self.takeovers, "handovers": self.handovers}

    async def released(self, partitions: set[int]) -> None:
        core = self.core
        async with core.lock:
            dropped = core.forget_unowned()
        self.handovers += 1
        log.info("partitions handed over", partitions=sorted(partitions), open_cycles_dropped=dropped)
