"""Reconciliation of reserved capital against trade cycles and balances (the portfolio's safety net).

The coordinator releases a reservation when its cycle ends or its order is rejected; if it crashed in
between, the money would stay set aside for ever. This job repairs that and reports what does not add up:

- a live reservation whose cycle is terminal (for longer than `grace_ms`) is released with the cycle's
  realised PnL (trader's `profit_loss`, 0 for a canceled/failed cycle);
- a reservation still `reserved` with no cycle after `stale_ms` is released (the order never started);
- drift is logged, never "fixed" blindly: open cycles without a live reservation, and capital used in the
  pockets vs. the entry value of the open cycles vs. the quote value of locked balances.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import select

from roottrading.capital.ledger import CONSUMED, RESERVED, PocketLedger, fmt
from roottrading.clock import Clock
from roottrading.domain import Balance, CycleStatus
from roottrading.store.db import Database
from roottrading.store.repos_orders import _cycle
from roottrading.store.tables import trade_cycles

log = structlog.get_logger(__name__)
ZERO = Decimal(0)
DRIFT_TOLERANCE = Decimal("0.02")  # 2 % between used capital and open positions' entry value


class Reconciler:
    def __init__(
        self, db: Database, ledger: PocketLedger, clock: Clock, *, grace_ms: int = 30_000, stale_ms: int = 900_000
    ) -> None:
        self.db, self.ledger, self.clock = db, ledger, clock
        self.grace_ms, self.stale_ms = grace_ms, stale_ms
        self.last: dict[str, Any] | None = None

    async def run(
        self, balances: list[Balance], quote: str, price_of: Callable[[str], Decimal | None]
    ) -> dict[str, Any]:
        now = self.clock.now_ms()
        live = await self.ledger.reservations(status=[RESERVED, CONSUMED])
        ids = [r.id for r in live]
        cycle_ids = [r.cycle_id for r in live if r.cycle_id]
        async with self.db.connect() as conn:
            by_res = {}
            if ids or cycle_ids:
                q = select(trade_cycles).where(
                    trade_cycles.c.reservation_id.in_(ids) | trade_cycles.c.id.in_(cycle_ids)
                )
                for row in (await conn.execute(q)).mappings():
                    cyc = _cycle(row)
                    if cyc.reservation_id:
                        by_res[cyc.reservation_id] = cyc
                    by_res.setdefault(f"cycle:{cyc.id}", cyc)
            open_rows = (
                (
                    await conn.execute(
                        select(trade_cycles).where(
                            trade_cycles.c.status.in_([s.value for s in CycleStatus if not s.is_terminal])
                        )
                    )
                )
                .mappings()
                .all()
            )
        released: list[dict[str, str]] = []
        for r in live:
            c = by_res.get(r.id) or (by_res.get(f"cycle:{r.cycle_id}") if r.cycle_id else None)
            if c is not None and c.status.is_terminal and now - c.updated_at >= self.grace_ms:
                pnl = c.profit_loss if c.status is CycleStatus.COMPLETED and c.profit_loss is not None else ZERO
                if c.reservation_id and r.id != c.reservation_id:
                    pnl = ZERO  # a position adjustment's reservation: the PnL goes with the entry's, once
                await self.ledger.release(r.id, f"reconcile: cycle {c.id} {c.status.value}", pnl=pnl)
                released.append({"reservation": r.id, "cycle": c.id, "why": f"cycle {c.status.value}"})
            elif (
                c is None
                and r.status == RESERVED
                and now - r.created_at >= self.stale_ms
                # only if no trader claimed it since this job read the cycles (see PocketLedger.release)
                and await self.ledger.release(
                    r.id, "reconcile: no cycle started", only_if_idle_since=now - self.stale_ms
                )
            ):
                released.append({"reservation": r.id, "cycle": "", "why": "stale, no cycle"})
        open_cycles = [_cycle(row) for row in open_rows]
        live_ids = {r.id for r in live} - {x["reservation"] for x in released}
        unfunded = [c.id for c in open_cycles if c.reservation_id and c.reservation_id not in live_ids]
        used = sum((p.used_value for p in await self.ledger.pockets()), ZERO)
        in_positions = sum(((c.entry_price or ZERO) * c.quantity for c in open_cycles), ZERO)
        locked = sum((b.locked * (price_of(b.asset) or ZERO) for b in balances), ZERO)
        warnings = []
        if unfunded:
            warnings.append(f"{len(unfunded)} open cycle(s) whose reservation is not live")
        if max(used, in_positions) > 0 and abs(used - in_positions) > DRIFT_TOLERANCE * max(used, in_positions):
            warnings.append(f"used capital {fmt(used)} vs open positions' entry value {fmt(in_positions)}")
        report = {
            "time": now,
            "released": released,
            "live_reservations": len(live_ids),
            "open_cycles": len(open_cycles),
            "unfunded_cycles": unfunded,
            "used_capital": fmt(used),
            "open_positions_value": fmt(in_positions),
            "locked_value": fmt(locked),
            "drift_warnings": warnings,
        }
        if released or (warnings and warnings != (self.last or {}).get("drift_warnings")):
            log.warning("reconciliation found drift", released=len(released), warnings=warnings)
        self.last = report
        return report
