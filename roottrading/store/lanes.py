"""Transaction lanes for a file SQLite database: the order path's store writes in one step, in order.

Why not the async engine: through aiosqlite every statement, the BEGIN, the COMMIT and the pool's reset are
each a hop to the connection's thread and back, so a three-statement transaction cost ~1 ms.

A lane runs a whole transaction (a plain function over a sync SQLAlchemy Connection):
- on the event loop itself when it can, with `BEGIN IMMEDIATE` and busy_timeout=0: it takes SQLite's write
  lock at once or fails at once, before the function has run. Why on the loop: the work is SQLAlchemy's
  Python code, which holds the GIL wherever it runs, so a thread bought no parallelism and cost a hop of
  ~0.1-0.15 ms plus scheduling jitter (signal -> order-sent has two such transactions on its path).
  A commit does not fsync (WAL, synchronous=NORMAL; checkpoints run in the background, checkpoint.py).
- in the lane's own thread otherwise: when the lock is taken by another connection (there it waits, with
  busy_timeout, without blocking the loop), or when transactions are already queued there (the lane keeps
  its transactions in submission order).
Same file, same pragmas, same SQLAlchemy types as the async engine: other connections see an ordinary
SQLite writer, serialised by SQLite's lock. A read lane runs read-only functions (WAL: never blocked by
the writer, sees the last commit), so a read on the hot path never queues behind the writes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import OperationalError

from roottrading.store.db import Database, sqlite_synchronous

T = TypeVar("T")
_PRAGMAS = (
    "journal_mode=WAL",
    "foreign_keys=ON",
    "wal_autocheckpoint=0",
)  # checkpoints run off the commit path (store/checkpoint.py); synchronous as the Database says (db.py)


class _Busy(Exception):
    """SQLite's lock is held by another connection (the on-loop attempt gives way to the thread)."""


def _engine(path: str, *, busy_timeout_ms: int, immediate: bool, durable: bool = False) -> Engine:
    engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (SQLAlchemy's documented pysqlite recipe)
        cur = dbapi_conn.cursor()
        for pragma in (*_PRAGMAS, f"synchronous={sqlite_synchronous(durable)}", f"busy_timeout={busy_timeout_ms}"):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _is_busy(exc: OperationalError) -> bool:
    orig = exc.orig
    return isinstance(orig, sqlite3.OperationalError) and ("locked" in str(orig) or "busy" in str(orig))


class SqliteLane:
    def __init__(self, path: str, *, read: bool = False, durable: bool = False) -> None:
        self.read = read
        self.engine = _engine(path, busy_timeout_ms=5000, immediate=not read, durable=durable)  # may wait
        self.loop_engine = _engine(path, busy_timeout_ms=0, immediate=not read, durable=durable)  # never waits
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="sqlite-lane")
        self.queued = 0  # transactions handed to the thread and not finished
        self.on_loop = 0  # statistics: transactions run on the loop / in the thread
        self.in_thread = 0

    async def run(self, fn: Callable[[Connection], T]) -> T:
        if not self.queued:
            try:
                result = self._loop_txn(fn)
                self.on_loop += 1
                return result
            except _Busy:
                pass
        self.queued += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, self._txn, fn)
        finally:
            self.queued -= 1
            self.in_thread += 1

    def _loop_txn(self, fn: Callable[[Connection], T]) -> T:
        with self.loop_engine.connect() as conn:
            try:
                txn = conn.begin()  # write lane: BEGIN IMMEDIATE, the lock now or _Busy; fn has not run
            except OperationalError as exc:
                if _is_busy(exc):
                    raise _Busy from exc
                raise
            with txn:
                if not self.read:
                    return fn(conn)
                try:
                    return fn(conn)
                except OperationalError as exc:  # a read may meet SQLite's busy state too: re-read in the thread
                    if _is_busy(exc):
                        raise _Busy from exc
                    raise

    def _txn(self, fn: Callable[[Connection], T]) -> T:
        with self.engine.begin() as conn:
            return fn(conn)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.engine.dispose()
        self.loop_engine.dispose()


_LANES: weakref.WeakKeyDictionary[Database, tuple[SqliteLane, SqliteLane] | None] = weakref.WeakKeyDictionary()


def lane_for(db: Database, *, read: bool = False) -> SqliteLane | None:
    """The lane of a file-backed SQLite database (created once per Database), None for anything else
    (PostgreSQL has no thread hops to save; an in-memory SQLite cannot be opened twice). `read=True`: the
    read lane."""
    if db not in _LANES:
        lanes = None
        if db.sqlite_path is not None:
            lanes = (SqliteLane(db.sqlite_path, durable=db.durable), SqliteLane(db.sqlite_path, read=True))
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
