"""Several coordinators: each decides the signals of the symbols whose `signals` partitions it holds.

Why the bus's partition leases (bus/ownership.py) and not a leader: signals are published keyed by symbol, so
the coordinator group already splits the symbols across instances, one reader per symbol, in order. What a
coordinator keeps in memory to decide without database reads (memory.py) is then made right for several
instances:

- decided signals and entry cooldowns: reloaded from the store when partitions are taken over (before any
  entry of them is read), so a signal the previous owner decided, then died before acknowledging, is found
  decided (and its accepted request re-published, which the trader dedupes by request id) and a cooldown it
  started still holds;
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
        self.takeovers += 1
        log.info(
            "signal partitions taken over; decisions, cooldowns and open cycles reloaded", partitions=sorted(partitions)
        )
