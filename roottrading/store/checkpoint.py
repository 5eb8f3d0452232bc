"""WAL checkpoints for a file SQLite database, off every transaction's path.

Why: SQLite's automatic checkpoint runs inside the COMMIT that pushes the WAL past 1000 pages, and with
synchronous=NORMAL a checkpoint fsyncs the database file: that one commit takes milliseconds. On the order
path (the coordinator's reservation, the trader's order intent) it was the whole latency tail: signal ->
order-sent p99 5.3 ms with automatic checkpoints, 2.6-3.0 ms without (benchmarks/execution.py --signal).
So every connection the store opens turns automatic checkpoints off (`PRAGMA wal_autocheckpoint=0`) and
this task checkpoints instead, in a worker thread on its own short-lived connection, when the WAL has grown
past `max_wal_bytes` or `every_s` has passed since the last checkpoint with writes. PASSIVE: it copies what
it can without waiting for readers or writers, so no transaction ever waits for it. Its thread runs at a
lower CPU priority (roottrading/threads.py): a checkpoint copies and fsyncs megabytes, and on a small machine it
took a CPU from the event loop (the gateway's worst latency bursts coincided with checkpoints).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import structlog

from roottrading.threads import background_executor

log = structlog.get_logger(__name__)


class WalCheckpointer:
    def __init__(self, path: str, *, max_wal_bytes: int = 8 << 20, every_s: float = 30.0, poll_s: float = 1.0) -> None:
        self.path = path
        self.max_wal_bytes = max_wal_bytes
        self.every_s = every_s
        self.poll_s = poll_s
        self.checkpoints = 0
        self._task: asyncio.Task[None] | None = None
        self._thread: ThreadPoolExecutor | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sqlite:checkpoint")

    async def _checkpoint_in_thread(self) -> None:
        if self._thread is None:
            self._thread = background_executor("sqlite-checkpoint")
        await asyncio.get_running_loop().run_in_executor(self._thread, self.checkpoint)

    def _wal_size(self) -> int:
        try:
            return os.path.getsize(self.path + "-wal")
        except OSError:  # no WAL file (yet)
            return 0

    async def _run(self) -> None:
        last, last_size = time.monotonic(), self._wal_size()
        while True:
            await asyncio.sleep(self.poll_s)
            size = self._wal_size()
            due = time.monotonic() - last >= self.every_s and size != last_size
            if size >= self.max_wal_bytes or due:
                await self._checkpoint_in_thread()
                last, last_size = time.monotonic(), self._wal_size()

    def checkpoint(self) -> None:
        """One PASSIVE checkpoint (blocking: call it from a worker thread)."""
        try:
            conn = sqlite3.connect(self.path, timeout=5.0)
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self.checkpoints += 1
            finally:
                conn.close()
        except sqlite3.Error as exc:  # an optimisation only: the WAL still holds every commit
            log.warning("wal checkpoint failed", path=self.path, error=str(exc))

    async def stop(self) -> None:
        """Stop polling and run a last checkpoint, so a closed database is compact on disk."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            await self._checkpoint_in_thread()
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None
