"""CandleWriter's direct SQLite path: one transaction per batch, upsert semantics, and it yields to the loop
(never blocks it) while another connection holds SQLite's write lock."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import msgspec

from roottrading.domain import Candle
from roottrading.services.gateway.writer import CandleWriter, sqlite_file
from roottrading.store import Database
from roottrading.store.repos_market import CandleRepo


def _candle(i: int, close: float = 101.0, closed: bool = True) -> Candle:
    t = 1_704_067_200_000 + i * 60_000
    return Candle(symbol="BTCUSDT", interval="1m", open_time=t, close_time=t + 59_999, open=100.0, high=102.0,
                  low=99.0, close=close, volume=1.5, quote_volume=150.0, trades=3, closed=closed)


async def _db(tmp_path: Path) -> Database:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/w.db")
    await db.migrate()
    return db


async def test_batch_upsert_stores_closed_candles_and_updates_on_conflict(tmp_path: Path) -> None:
    db = await _db(tmp_path)
    w = CandleWriter(db)
    assert sqlite_file(db) == f"{tmp_path}/w.db"
    try:
        assert await w.upsert([_candle(0), _candle(1), _candle(2, closed=False)]) == 2
        assert await w.upsert([_candle(1, close=101.5), _candle(3)]) == 2  # 1 is replaced, not duplicated
        stored = await CandleRepo(db).range("BTCUSDT", "1m")
        assert [c.open_time for c in stored] == [_candle(i).open_time for i in (0, 1, 3)]
        assert stored[1] == msgspec.structs.replace(_candle(1), close=101.5)
    finally:
        await w.close()
        await db.close()


async def test_waits_for_another_writer_without_blocking_the_loop(tmp_path: Path) -> None:
    db = await _db(tmp_path)
    w = CandleWriter(db, lock_retry_s=0.001)
    w.prepare()
    other = sqlite3.connect(f"{tmp_path}/w.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds SQLite's lock
    try:
        task = asyncio.create_task(w.upsert([_candle(0)]))
        ticks = 0
        for _ in range(20):  # the loop keeps running while the writer waits
            await asyncio.sleep(0.002)
            ticks += 1
        assert not task.done() and w.lock_waits > 0 and ticks == 20
        other.execute("COMMIT")
        assert await asyncio.wait_for(task, 2) == 1
        assert [c.open_time for c in await CandleRepo(db).range("BTCUSDT", "1m")] == [_candle(0).open_time]
    finally:
        other.close()
        await w.close()
        await db.close()


async def test_in_memory_database_uses_the_sqlalchemy_path(tmp_path: Path) -> None:
    db = Database("sqlite+aiosqlite:///:memory:")
    await db.migrate()
    w = CandleWriter(db)
    try:
        assert sqlite_file(db) is None
        assert await w.upsert([_candle(0), _candle(0, close=100.5)]) == 2
        assert [c.close for c in await CandleRepo(db).range("BTCUSDT", "1m")] == [100.5]
    finally:
        await w.close()
        await db.close()


async def test_checkpoint_runs_off_the_loop_after_enough_rows(tmp_path: Path) -> None:
    db = await _db(tmp_path)
    w = CandleWriter(db, checkpoint_rows=3, checkpoint_every_s=3600)
    try:
        await w.upsert([_candle(0), _candle(1)])
        assert w.checkpoints == 0
        await w.upsert([_candle(2)])
        assert w.checkpoints == 1 and w._checkpoint is not None
        await w._checkpoint  # ran in a worker thread
        await w.upsert([_candle(3)])
        assert w.checkpoints == 1  # counting restarted
        with sqlite3.connect(f"{tmp_path}/w.db") as other:
            busy, log_pages, done = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert busy == 0 and log_pages == done
        assert len(await CandleRepo(db).range("BTCUSDT", "1m")) == 4
    finally:
        await w.close()
        await db.close()
