"""Event logs, coordinator decisions and consumer idempotency; `run_txn`, the one-hop transaction runner
the order path uses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from roottrading.store.db import Database
from roottrading.store.lanes import lane_for
from roottrading.store.tables import decisions, event_logs, processed_messages

T = TypeVar("T")

_UPSERTS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...] | None], Any] = {}


def upsert_stmt(db: Database, table: Table, keys: Sequence[str], update: Sequence[str] | None = None) -> Any:
    """`db.upsert` without the values: execute it as `conn.execute(stmt, row)`. One statement object per
    shape, so SQLAlchemy compiles it once (a `.values(rows)` statement is rebuilt and recompiled per call,
    ~0.5 ms for a 20-column row)."""
    k = (db.dialect, table.name, tuple(keys), None if update is None else tuple(update))
    stmt = _UPSERTS.get(k)
    if stmt is None:
        ins = postgresql.insert(table) if db.dialect == "postgresql" else sqlite.insert(table)
        cols = [c.name for c in table.columns if c.name not in keys] if update is None else list(update)
        stmt = (
            ins.on_conflict_do_nothing(index_elements=list(keys))
            if not cols
            else ins.on_conflict_do_update(index_elements=list(keys), set_={c: ins.excluded[c] for c in cols})
        )
        _UPSERTS[k] = stmt
    return stmt


async def run_txn(db: Database, fn: Callable[[Connection], T], *, read: bool = False) -> T:
    """Run `fn(conn)` in one transaction (commit on return, rollback on exception): on a lane on a file
    SQLite (lanes.py: on the loop, or in one thread hop when SQLite's lock is taken), else through the async
    engine (`run_sync`, same code, same semantics). `read=True` for a function that only reads (the read
    lane). `fn` may run twice only when a read-only function met SQLite's busy state on the loop."""
    lane = lane_for(db, read=read)
    if lane is not None:
        return await lane.run(fn)
    async with db.begin() as conn:
        return await conn.run_sync(fn)


class EventLogRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_many(self, rows: list[dict[str, Any]]) -> int:
        """rows: message_id, time, level, service, event, context. Duplicates (same message_id) are ignored."""
        if not rows:
            return 0
        async with self.db.begin() as conn:
            res = await conn.execute(self.db.upsert(event_logs, rows, ["message_id"], update=[]))
        return int(res.rowcount or 0)

    async def query(
        self,
        *,
        level: str | None = None,
        service: str | None = None,
        since: int | None = None,
        q: str | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        stmt = select(event_logs)
        if level:
            stmt = stmt.where(event_logs.c.level == level.lower())
        if service:
            stmt = stmt.where(event_logs.c.service == service)
        if since is not None:
            stmt = stmt.where(event_logs.c.time >= since)
        if q:
            stmt = stmt.where(or_(event_logs.c.event.contains(q, autoescape=True)))
        stmt = stmt.order_by(event_logs.c.time.desc(), event_logs.c.id.desc()).limit(max(1, min(limit, 5000)))
        async with self.db.connect() as conn:
            return [dict(r) for r in (await conn.execute(stmt)).mappings().all()]


_DECISION_INSERTS: dict[str, Any] = {}


class DecisionRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(
        self,
        *,
        signal_id: str,
        time: int,
        symbol: str,
        strategy: str,
        decision: str,
        reason: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        row = {
            "signal_id": signal_id,
            "time": time,
            "symbol": symbol,
            "strategy": strategy,
            "decision": decision,
            "reason": reason,
            "details": details or {},
        }
        await run_txn(self.db, lambda conn: self.add_in(conn, row))

    @staticmethod
    def add_in(conn: Connection, row: dict[str, Any]) -> bool:
        """Insert a decision row inside the caller's (sync) transaction, e.g. with the reservation it funds.
        A row for the same (signal, decision) already there (another coordinator instance, a redelivery after
        a crash) wins: nothing is inserted (unique index, ON CONFLICT DO NOTHING). True when inserted."""
        stmt = _DECISION_INSERTS.get(conn.dialect.name)
        if stmt is None:  # one statement object per dialect: compiled once (the coordinator's hot path)
            ins = postgresql.insert(decisions) if conn.dialect.name == "postgresql" else sqlite.insert(decisions)
            stmt = _DECISION_INSERTS[conn.dialect.name] = ins.on_conflict_do_nothing(
                index_elements=["signal_id", "decision"]
            )
        return bool(conn.execute(stmt, {**row, "details": row.get("details") or {}}).rowcount)

    async def decided_since(self, since: int) -> dict[str, str]:
        """signal id -> its latest decision, for the decisions recorded at or after `since` (epoch ms)."""
        stmt = (
            select(decisions.c.signal_id, decisions.c.decision)
            .where(decisions.c.time >= since)
            .order_by(decisions.c.time, decisions.c.id)
        )
        async with self.db.connect() as conn:
            return {r[0]: r[1] for r in (await conn.execute(stmt)).all()}

    async def accepted_since(self, since: int) -> list[dict[str, Any]]:
        """The accepted decisions recorded at or after `since` (epoch ms), oldest first, with their details."""
        stmt = (
            select(decisions)
            .where(decisions.c.time >= since, decisions.c.decision == "accepted")
            .order_by(decisions.c.time, decisions.c.id)
        )
        async with self.db.connect() as conn:
            return [dict(r) for r in (await conn.execute(stmt)).mappings().all()]

    async def query(self, *, signal_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        stmt = select(decisions)
        if signal_id:
            stmt = stmt.where(decisions.c.signal_id == signal_id)
        stmt = stmt.order_by(decisions.c.time.desc(), decisions.c.id.desc()).limit(limit)
        async with self.db.connect() as conn:
            return [dict(r) for r in (await conn.execute(stmt)).mappings().all()]


class Processed:
    """Exactly-once effects over an at-least-once bus: record (consumer, message id) in the same transaction
    as the effect; a redelivered message finds its row and is skipped."""

    def __init__(self, db: Database, consumer: str) -> None:
        self.db, self.consumer = db, consumer

    async def claim(self, conn: Any, message_id: str, time: int) -> bool:
        """Inside the caller's transaction: True if this message is new (and is now marked done)."""
        res = await conn.execute(
            self.db.upsert(
                processed_messages,
                [{"consumer": self.consumer, "message_id": message_id, "time": time}],
                ["consumer", "message_id"],
                update=[],
            )
        )
        return bool(res.rowcount)
