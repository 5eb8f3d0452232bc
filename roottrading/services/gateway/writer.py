"""Write-behind candle store: the gateway publishes a closed candle at once and stores it right after, in order.

Why write-behind (and why it loses nothing):
- A commit is the slow part of ingest. At a minute boundary every symbol's candle closes together, and each
  one lands on a different B-tree page, so a 50-candle commit writes 50 WAL frames (~400 us on SQLite);
  storing before publishing put that on every candle's path to the bus (p99 3-18 ms at 20 000 msg/s).
- The gateway submits a candle only after publishing it, and writes are applied in submission order, so
  per symbol the stored candles are always a prefix of the published ones. After a crash the gateway
  restarts from the last *stored* candle and backfills from REST: a candle that was published but not yet
  stored is fetched, stored and re-published with the same message id (consumers are idempotent by id).
  The hole of store-first (stored, then the process dies or the bus refuses before publishing: never
  published) cannot happen.
- Nothing reads a candle from the store on its way through the pipeline (services warm up from the store
  at start, then follow the bus), so "stored a few hundred microseconds later" is invisible to them.

Group commit: one writer task; whatever was submitted while a transaction ran goes into the next one, and
with `coalesce_s` the task waits that long after waking, so a burst (every symbol closing at the same
minute boundary) is read and published first and then committed once.
A failed write is retried (same rows, same order) with backoff until it is stored; `pending_rows` lets the
gateway stop publishing when the store falls too far behind (bounded memory while a database is down).

Two backends:
- SQLite file (the embedded default): a dedicated thread with its own `sqlite3` connection. sqlite3 releases
  the GIL while SQLite works, so the event loop keeps reading the stream during a commit; the thread may
  wait for another writer's lock (busy_timeout) without blocking the loop. The thread runs at a lower CPU
  priority, so on a busy machine the loop's ingest goes first (roottrading/threads.py). WAL with
  synchronous=NORMAL (no fsync per commit); automatic checkpoints (which fsync) are off: the database's
  background checkpointer (store/checkpoint.py) does them, as for every other store connection.
- anything else (PostgreSQL, in-memory SQLite): one compiled SQLAlchemy upsert executed with a list of
  parameter sets (executemany) in one transaction, awaited by the writer task.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from roottrading.domain import Candle
from roottrading.store import Database
from roottrading.store.tables import market_data
from roottrading.threads import background_executor

log = structlog.get_logger(__name__)

_KEYS = ["symbol", "interval", "open_time"]
_FIELDS = [c.name for c in market_data.columns]
_row = operator.attrgetter(*_FIELDS)  # Candle -> tuple in column order
_SQLITE_UPSERT = (
    f"INSERT INTO market_data ({', '.join(_FIELDS)}) VALUES ({', '.join('?' * len(_FIELDS))}) "
    f"ON CONFLICT ({', '.join(_KEYS)}) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _FIELDS if c not in _KEYS)
)
_WRITE_ERRORS = (SQLAlchemyError, sqlite3.Error, OSError)


class CandleWriter:
    """`submit(candles)` queues the closed ones and returns at once; `flush()` waits until all are committed."""

    def __init__(
        self,
        db: Database,
        *,
        busy_timeout_s: float = 30.0,
        retry_initial_s: float = 0.05,
        retry_max_s: float = 5.0,
        coalesce_s: float = 0.0,
    ) -> None:
        self.db = db
        self.coalesce_s = coalesce_s
        self.busy_timeout_s = busy_timeout_s
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        # statistics (GET /diagnostic)
        self.submitted_rows = 0
        self.committed_rows = 0
        self.commits = 0
        self.write_errors = 0
        self.last_error: str | None = None
        self._queue: list[tuple[Any, ...]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._closing = False
        self._stmt: Any = None
        self._path = db.sqlite_path
        self._thread: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # used only on the writer thread

    @property
    def pending_rows(self) -> int:
        """Candles submitted (and so already published) but not committed yet."""
        return self.submitted_rows - self.committed_rows

    def stats(self) -> dict[str, Any]:
        return {
            "pending": self.pending_rows,
            "committed": self.committed_rows,
            "commits": self.commits,
            "write_errors": self.write_errors,
            "last_error": self.last_error,
        }

    # --- intake ---------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Open the SQLite connection now (after migrations), not inside the first commit."""
        if self._path is not None:
            self._executor().submit(self._connection)

    def submit(self, candles: Sequence[Candle]) -> int:
        """Queue the closed candles for storage, in order. Returns how many were queued."""
        rows = [_row(c) for c in candles if c.closed]
        if rows:
            if self._closing:
                raise RuntimeError("CandleWriter is closed")
            self._queue.extend(rows)
            self.submitted_rows += len(rows)
            if self._task is None:
                self._wake = asyncio.Event()
                self._task = asyncio.create_task(self._run(), name="gateway:candle-writer")
                self._task.add_done_callback(self._on_stopped)
            assert self._wake is not None
            self._wake.set()
        return len(rows)

    async def flush(self) -> None:
        """Return once every candle submitted before this call is committed."""
        target = self.submitted_rows
        if self.committed_rows >= target:
            return
        if self._task is None or self._task.done():
            raise RuntimeError(f"candle writer stopped with {self.pending_rows} candles not stored")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((target, fut))
        await fut

    async def upsert(self, candles: Sequence[Candle]) -> int:
        """Store the closed candles and wait for the commit. Returns how many were stored."""
        n = self.submit(candles)
        await self.flush()
        return n

    # --- the writer task ------------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.coalesce_s and not self._closing:
                await asyncio.sleep(self.coalesce_s)  # let a burst (every symbol closing at once) finish first
            rows, self._queue = self._queue, []
            await self._commit(rows)
            self.committed_rows += len(rows)
            self.commits += 1
            self._release_waiters()

    def _on_stopped(self, task: asyncio.Task[None]) -> None:
        """The writer task ended: normal after close(); otherwise a bug. Either way no waiter hangs."""
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            log.error("candle writer stopped by an unexpected error", error=repr(exc), pending=self.pending_rows)
        for _, fut in self._waiters:
            if not fut.done():
                fut.set_exception(RuntimeError(f"candle writer stopped with {self.pending_rows} candles not stored"))
        self._waiters = []

    def _release_waiters(self) -> None:
        done = self.committed_rows
        keep = []
        for target, fut in self._waiters:
            if target <= done:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((target, fut))
        self._waiters = keep

    async def _commit(self, rows: list[tuple[Any, ...]]) -> None:
        """Store `rows` in one transaction; on failure retry the same rows until they are stored."""
        delay = self.retry_initial_s
        while True:
            try:
                if self._path is not None:
                    await asyncio.get_running_loop().run_in_executor(self._executor(), self._write_sqlite, rows)
                else:
                    async with self.db.begin() as conn:
                        await conn.execute(self._statement(), [dict(zip(_FIELDS, r, strict=True)) for r in rows])
                return
            except _WRITE_ERRORS as exc:
                self.write_errors += 1
                self.last_error = repr(exc)
                log.error("market_data write failed; retrying", error=repr(exc), candles=len(rows))
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)

    def _statement(self) -> Any:
        if self._stmt is None:
            ins = postgresql.insert(market_data) if self.db.dialect == "postgresql" else sqlite.insert(market_data)
            self._stmt = ins.on_conflict_do_update(
                index_elements=_KEYS, set_={c: ins.excluded[c] for c in _FIELDS if c not in _KEYS}
            )
        return self._stmt

    # --- SQLite, on the writer thread -----------------------------------------------------------------
    def _executor(self) -> ThreadPoolExecutor:
        if self._thread is None:
            self._thread = background_executor("candle-writer")  # a lower CPU priority than the loop
        return self._thread

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            assert self._path is not None
            conn = sqlite3.connect(self._path, isolation_level=None, timeout=self.busy_timeout_s)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints (fsync) run in the background (checkpoint.py)
            conn.execute("SELECT 1 FROM market_data LIMIT 1").fetchall()
            self._conn = conn
        return self._conn

    def _write_sqlite(self, rows: list[tuple[Any, ...]]) -> None:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_SQLITE_UPSERT, rows)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def _close_sqlite(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # --- shutdown -------------------------------------------------------------------------------------
    async def close(self, timeout_s: float = 30.0) -> None:
        """Commit everything submitted and close the connection. If the store stays
        unreachable for `timeout_s`, give up: those candles were published, and the next start backfills them
        (it resumes after the last stored candle)."""
        self._closing = True
        if self._task is not None and not self._task.done():  # (close is idempotent)
            assert self._wake is not None
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
            except TimeoutError:
                log.error(
                    "closing with candles not stored; the next start backfills them",
                    pending=self.pending_rows,
                    last_error=self.last_error,
                )
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._close_sqlite)
            self._thread.shutdown(wait=True)
            self._thread = None
