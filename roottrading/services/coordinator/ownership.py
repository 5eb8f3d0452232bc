"""Several coordinators: each decides the signals of the symbols whose `signals` partitions it holds.

Why the bus's partition leases (bus/ownership.py) and not a leader: signals are published keyed by symbol, so
the coordinator group already splits the symbols across instances, one reader per symbol, in order. What a
coordinator keeps in memory to decide without database reads (memory.py) is then made right for several
instances:

- decided signals and entry cooldowns: reloaded from the store when partitions are taken over (before any
  entry of them is read), so a signal the previous owner decided, then died before acknowledging, is found
  decided (and its accepted request re-published, which the trader dedupes by request id) and a cooldown it
  started still holds;
- accepted entries whose cycle is not opened yet (memory.PendingEntries): rebuilt from the store for the symbols
  of the partitions taken over (at start: for every symbol), so an entry the previous owner accepted and
  reserved just before dying still counts as open: the new owner does not enter the same symbol/strategy a
  second time while the trader opens the first one (its reservation is claimed by that cycle, or released by
  the portfolio's reconciliation if the request never arrives);
- open cycles and the portfolio's equity: every instance receives every `trade.cycles` and `portfolio.balances`
  message (broadcast groups, service.consumes) for its views; reservations are settled from cycle updates in
  the shared, durable group (one instance per update, nothing missed while all are down), and the ledger's
  status-guarded updates make a redelivered settlement move no money twice;
- a decision is unique in the database: at most one row per (signal, decision) (migration 0006, inserts that
  meet an existing row do nothing), and an entry's reservation id derives from the signal id (primary key):
  even two instances deciding the same signal at once reserve once and record one "accepted".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from roottrading import ids
from roottrading.bus.ownership import Ownership
from roottrading.services.coordinator.memory import DAY_MS

if TYPE_CHECKING:
    from roottrading.services.coordinator.service import CoordinatorService

log = structlog.get_logger(__name__)


class CoordinatorTakeOver:
    def __init__(self, svc: CoordinatorService, ownership: Ownership) -> None:
        self.svc, self.ownership = svc, ownership
        self.started = False  # set by the service once start() loaded everything
        self.takeovers = 0
        ownership.on_acquire(self.acquired)

    async def acquired(self, partitions: set[int]) -> None:
        if not self.started:
            return
        svc = self.svc
        async with svc._lock:  # no decision while the views are reloaded
            since = svc.ctx.clock.now_ms() - DAY_MS
            svc.decided.load(since, await svc.decisions.decided_since(since))
            await svc._load_cooldowns()
            svc.open_view.load(await svc.cycles.open_cycles())
            pending = await self.load_pending(partitions)
        self.takeovers += 1
        log.info(
            "signal partitions taken over; decisions, cooldowns, open cycles and pending entries reloaded",
            partitions=sorted(partitions),
            pending_entries=pending,
        )

    def health(self) -> dict[str, object]:
        """Which signal partitions this instance decides (tests and operators find the owner of a symbol)."""
        own = self.ownership
        if own.everything:
            return {"owns": "all"}
        return {"owns": sorted(own.owned_partitions()), "takeovers": self.takeovers}

    async def load_pending(self, partitions: set[int] | None) -> int:
        """Accepted entries (decided within the pending TTL, not failed since) whose cycle is in neither the
        open-cycle view nor the store, for the symbols of `partitions` (None: every symbol), noted as pending.
        Call after `decided` and `open_view` were loaded. Returns how many were noted."""
        svc = self.svc
        since = svc.ctx.clock.now_ms() - int(svc.cfg.pending_ttl_s * 1000)
        known = svc.pending.cycle_ids()
        noted = 0
        for row in await svc.decisions.accepted_since(since):
            details, sid = row.get("details") or {}, row["signal_id"]
            if details.get("stage") != "order" or svc.decided.get(sid) not in (None, "accepted"):
                continue  # an exit, or an entry whose request was never sent (decided again as failed)
            if partitions is not None and not self.ownership.keys_of(partitions, [row["symbol"]]):
                continue
            cycle_id = ids.cycle_id(details["request_id"])
            if cycle_id in known or svc.open_view.seen(cycle_id) or await svc.cycles.get(cycle_id) is not None:
                continue  # noted already, or the trader opened it (and maybe closed it already)
            svc.pending.add((row["symbol"], row["strategy"]), cycle_id, int(row["time"]))
            noted += 1
        return noted
