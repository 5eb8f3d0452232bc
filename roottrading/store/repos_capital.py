"""Portfolio balances, performance snapshots, and the read side of trades used by portfolio/PnL/report.

(The pockets and their reservations are written only by roottrading.capital.ledger.PocketLedger, whose
transactions are the atomic unit; this module only reads them where a report needs to.)
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, delete, func, or_, select

from roottrading.domain import Balance, CycleStatus, Fill, Side, TradeCycle
from roottrading.store.db import Database
from roottrading.store.repos_orders import _cycle
from roottrading.store.repos_system import Processed
from roottrading.store.tables import performance_stats, portfolio_balances, trade_cycles, trade_executions, trade_fills

_CHUNK = 500


class BalanceRepo:
    """portfolio_balances: one row per asset; `value_usdc` holds the value in the configured quote asset."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def upsert(self, balances: list[Balance], now: int) -> None:
        if not balances:
            return
        rows = [
            {
                "asset": b.asset,
                "free": b.free,
                "locked": b.locked,
                "total": b.free + b.locked,
                "value_usdc": b.value_quote,
                "updated_at": now,
            }
            for b in balances
        ]
        async with self.db.begin() as conn:
            await conn.execute(self.db.upsert(portfolio_balances, rows, ["asset"]))

    async def all(self) -> list[Balance]:
        async with self.db.connect() as conn:
            rows = (await conn.execute(select(portfolio_balances).order_by(portfolio_balances.c.asset))).mappings()
            return [
                Balance(asset=r["asset"], free=r["free"], locked=r["locked"], value_quote=r["value_usdc"])
                for r in rows.all()
            ]

    async def apply_fill(self, fill: Fill, base: str, quote: str, claim: Processed, message_id: str, now: int) -> bool:
        """Move a fill's quantities between the base and quote balances (fees taken from their asset),
        exactly once per message: the claim and the change share one transaction. False if seen before."""
        deltas: dict[str, Decimal] = defaultdict(Decimal)
        sign = 1 if fill.side is Side.BUY else -1
        deltas[base] += sign * fill.quantity
        deltas[quote] -= sign * fill.quote_quantity
        if fill.commission:
            deltas[fill.commission_asset] -= fill.commission
        async with self.db.begin() as conn:
            if not await claim.claim(conn, message_id, now):
                return False
            rows = {
                r["asset"]: r
                for r in (
                    await conn.execute(select(portfolio_balances).where(portfolio_balances.c.asset.in_(list(deltas))))
                )
                .mappings()
                .all()
            }
            out = []
            for asset, delta in deltas.items():
                r = rows.get(asset)
                free = (r["free"] if r else Decimal(0)) + delta
                locked = r["locked"] if r else Decimal(0)
                out.append(
                    {
                        "asset": asset,
                        "free": free,
                        "locked": locked,
                        "total": free + locked,
                        "value_usdc": r["value_usdc"] if r else None,
                        "updated_at": now,
                    }
                )
            await conn.execute(self.db.upsert(portfolio_balances, out, ["asset"]))
        return True

    async def remove_empty(self) -> None:
        async with self.db.begin() as conn:
            rows = (await conn.execute(select(portfolio_balances.c.asset, portfolio_balances.c.total))).all()
            empty = [a for a, t in rows if t == 0]
            if empty:
                await conn.execute(delete(portfolio_balances).where(portfolio_balances.c.asset.in_(empty)))


class PerformanceRepo:
    """performance_stats: periodic metric snapshots per scope (all / strategy / symbol / equity)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_many(self, rows: list[dict[str, Any]]) -> None:
        """rows: time, period, scope, scope_value, metrics (a JSON document)."""
        if rows:
            async with self.db.begin() as conn:
                await conn.execute(performance_stats.insert().values(rows))

    async def latest(self, scope: str, scope_value: str = "", period: str | None = None) -> dict[str, Any] | None:
        stmt = select(performance_stats).where(
            performance_stats.c.scope == scope, performance_stats.c.scope_value == scope_value
        )
        if period:
            stmt = stmt.where(performance_stats.c.period == period)
        stmt = stmt.order_by(performance_stats.c.time.desc(), performance_stats.c.id.desc()).limit(1)
        async with self.db.connect() as conn:
            r = (await conn.execute(stmt)).mappings().first()
        return dict(r) if r else None

    async def series(self, scope: str, *, since: int | None = None, limit: int = 5000) -> list[dict[str, Any]]:
        stmt = select(performance_stats).where(performance_stats.c.scope == scope)
        if since is not None:
            stmt = stmt.where(performance_stats.c.time >= since)
        stmt = stmt.order_by(performance_stats.c.time).limit(limit)
        async with self.db.connect() as conn:
            return [dict(r) for r in (await conn.execute(stmt)).mappings().all()]

    async def prune(self, before: int) -> None:
        async with self.db.begin() as conn:
            await conn.execute(delete(performance_stats).where(performance_stats.c.time < before))


class TradeReadRepo:
    """Cycles with their fills (joined through trade_executions.cycle_id and the cycles' order ids)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def cycles(
        self, *, since: int | None = None, symbol: str | None = None, strategy: str | None = None
    ) -> list[TradeCycle]:
        """Open cycles, and terminal ones updated at or after `since` (all when None)."""
        conds = []
        if since is not None:
            live = [s.value for s in CycleStatus if not s.is_terminal]
            conds.append(or_(trade_cycles.c.status.in_(live), trade_cycles.c.updated_at >= since))
        if symbol:
            conds.append(trade_cycles.c.symbol == symbol)
        if strategy:
            conds.append(trade_cycles.c.strategy == strategy)
        stmt = select(trade_cycles).where(and_(*conds)) if conds else select(trade_cycles)
        async with self.db.connect() as conn:
            return [_cycle(r) for r in (await conn.execute(stmt.order_by(trade_cycles.c.created_at))).mappings()]

    async def fills_by_cycle(self, cycles: list[TradeCycle]) -> dict[str, list[dict[str, Any]]]:
        ids = [c.id for c in cycles]
        order_cycle: dict[str, str] = {}
        for c in cycles:
            for oid in (c.entry_order_id, c.exit_order_id):
                if oid:
                    order_cycle[oid] = c.id
        async with self.db.connect() as conn:
            for i in range(0, len(ids), _CHUNK):
                rows = await conn.execute(
                    select(trade_executions.c.order_id, trade_executions.c.cycle_id).where(
                        trade_executions.c.cycle_id.in_(ids[i : i + _CHUNK])
                    )
                )
                order_cycle.update(dict(rows.all()))
            out: dict[str, list[dict[str, Any]]] = defaultdict(list)
            oids = list(order_cycle)
            for i in range(0, len(oids), _CHUNK):
                rows = await conn.execute(select(trade_fills).where(trade_fills.c.order_id.in_(oids[i : i + _CHUNK])))
                for r in rows.mappings():
                    out[order_cycle[r["order_id"]]].append(dict(r))
        return dict(out)

    async def fills_page(
        self,
        *,
        symbol: str | None = None,
        since: int | None = None,
        strategy: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """Fills newest first with their cycle id and strategy, plus the total count for pagination."""
        j = trade_fills.outerjoin(trade_executions, trade_executions.c.order_id == trade_fills.c.order_id).outerjoin(
            trade_cycles, trade_cycles.c.id == trade_executions.c.cycle_id
        )
        conds = []
        if symbol:
            conds.append(trade_fills.c.symbol == symbol)
        if since is not None:
            conds.append(trade_fills.c.time >= since)
        if strategy:
            conds.append(trade_cycles.c.strategy == strategy)
        cols: list[Any] = [trade_fills, trade_executions.c.cycle_id, trade_cycles.c.strategy]
        stmt = select(*cols).select_from(j).where(and_(*conds)) if conds else select(*cols).select_from(j)
        count = select(func.count()).select_from(j)
        if conds:
            count = count.where(and_(*conds))
        async with self.db.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        stmt.order_by(trade_fills.c.time.desc(), trade_fills.c.trade_id).limit(limit).offset(offset)
                    )
                )
                .mappings()
                .all()
            )
            total = int((await conn.execute(count)).scalar() or 0)
        return [dict(r) for r in rows], total


def as_json(row: dict[str, Any]) -> dict[str, Any]:
    """Decimals as plain strings for REST responses."""
    from roottrading.capital.ledger import fmt

    return {k: fmt(v) if isinstance(v, Decimal) else v for k, v in row.items()}
