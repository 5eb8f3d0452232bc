"""Event logs, coordinator decisions and consumer idempotency; `run_txn`, the one-hop transaction runner
the order path uses."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, create_engine, event, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from roottrading.store.db import Database
from roottrading.store.tables import decisions, event_logs, processed_messages

T = TypeVar("T")


class SqliteLane:
    """A synchronous connection to the same SQLite file, used from one dedicated thread.

    Why: through aiosqlite every statement, the BEGIN, the COMMIT and the pool's reset are each a hop to the
    connection's thread and back (~0.1 ms each, more when the loop is busy), so a three-statement transaction
    costs ~1 ms. Here the whole transaction (a plain function over a sync SQLAlchemy Connection) runs in ONE
    hop. Same file, same pragmas (WAL, busy_timeout), same SQLAlchemy types: other connections see an
    ordinary SQLite writer, serialised by SQLite's lock as before."""

    def __init__(self, path: str) -> None:
        self.engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})
        event.listen(self.engine, "connect", _pragmas)
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="sqlite-lane")

    async def run(self, fn: Callable[[Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._txn, fn)

    def _txn(self, fn: Callable[[Connection], T]) -> T:
        with self.engine.begin() as conn:
            return fn(conn)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.engine.dispose()


def _pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=5000"):
        cur.execute(f"PRAGMA {pragma}")
    cur.close()


_LANES: weakref.WeakKeyDictionary[Database, tuple[SqliteLane, SqliteLane] | None] = weakref.WeakKeyDictionary()


def lane_for(db: Database, *, read: bool = False) -> SqliteLane | None:
    """The lane of a file-backed SQLite database (created once per Database), None for anything else
    (PostgreSQL has no thread hops to save; an in-memory SQLite cannot be opened twice). `read=True`: a
    second lane for reads, so a read on the hot path never queues behind the writes in the first (WAL:
    it sees the last committed state, as any other connection would)."""
    if db not in _LANES:
        lanes = None
        url = db.url
        if db.dialect == "sqlite" and ":///" in url and ":memory:" not in url and "mode=memory" not in url:
            path = str(Path(url.split(":///", 1)[1].split("?", 1)[0]).expanduser())
            lanes = (SqliteLane(path), SqliteLane(path))
            weakref.finalize(db, _close, lanes)
        _LANES[db] = lanes
    got = _LANES[db]
    return None if got is None else got[1 if read else 0]


def _close(lanes: tuple[SqliteLane, ...]) -> None:
    for lane in lanes:
        lane.close()


def close_lanes(db: Database) -> None:
    """Called by Database.close(): the lanes' threads and connections end with the database, not at GC."""
    lanes = _LANES.pop(db, None)
    if lanes:
        _close(lanes)


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
        stmt = ins.on_conflict_do_nothing(index_elements=list(keys)) if not cols else ins.on_conflict_do_update(
            index_elements=list(keys), set_={c: ins.excluded[c] for c in cols})
        _UPSERTS[k] = stmt
    return stmt


async def run_txn(db: Database, fn: Callable[[Connection], T], *, read: bool = False) -> T:
    """Run `fn(conn)` in one transaction (commit on return, rollback on exception): in one thread hop on a
    file SQLite, else through the async engine (`run_sync`, same code, same semantics). `read=True` for a
    function that only reads (it runs on the read lane)."""
    lane = lane_for(db, read=read)
    if lane is not None:
        return await lane.run(fn)
    async with db.begin() as conn:
        return await conn.run_sync(fn)  # type: ignore[no-any-return]


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

    async def query(self, *, level: str | None = None, service: str | None = None, since: int | None = None,
                    q: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
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


class DecisionRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, *, signal_id: str, time: int, symbol: str, strategy: str, decision: str, reason: str,
                  details: dict[str, Any] | None = None) -> None:
        row = {"signal_id": signal_id, "time": time, "symbol": symbol, "strategy": strategy, "decision": decision,
               "reason": reason, "details": details or {}}
        await run_txn(self.db, lambda conn: self.add_in(conn, row))

    @staticmethod
    def add_in(conn: Connection, row: dict[str, Any]) -> None:
        """Insert a decision row inside the caller's (sync) transaction, e.g. with the reservation it funds."""
        conn.execute(decisions.insert(), {**row, "details": row.get("details") or {}})

    async def decided_since(self, since: int) -> dict[str, str]:
        """signal id -> its latest decision, for the decisions recorded at or after `since` (epoch ms)."""
        stmt = select(decisions.c.signal_id, decisions.c.decision).where(decisions.c.time >= since).order_by(
            decisions.c.time, decisions.c.id)
        async with self.db.connect() as conn:
            return {r[0]: r[1] for r in (await conn.execute(stmt)).all()}

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
        res = await conn.execute(self.db.upsert(processed_messages, [
            {"consumer": self.consumer, "message_id": message_id, "time": time}], ["consumer", "message_id"],
            update=[]))
        return bool(res.rowcount)
