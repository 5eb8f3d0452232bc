"""CandleWriter: write-behind in submission order, group commit, upsert semantics, retries that keep order,
and a SQLite writer thread that waits for another connection's lock without blocking the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import msgspec
import pytest

from roottrading.domain import Candle
from roottrading.services.gateway.writer import CandleWriter
from roottrading.store import Database
from roottrading.store.repos_market import CandleRepo
from tests.waiting import eventually


def _candle(i: int, close: float = 101.0, closed: bool = True) -> Candle:
    t = 1_704_067_200_000 + i * 60_000
    return Candle(
        symbol="BTCUSDT",
        interval="1m",
        open_time=t,
        close_time=t + 59_999,
        open=100.0,
        high=102.0,
        low=99.0,
        close=close,
        volume=1.5,
        quote_volume=150.0,
        trades=3,
        closed=closed,
    )


async def _db(tmp_path: Path) -> Database:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/w.db")
    await db.migrate()
    return db


async def test_batch_upsert_stores_closed_candles_and_updates_on_conflict(tmp_path: Path) -> None:
    db = await _db(tmp_path)
    w = CandleWriter(db)
    assert db.sqlite_path == f"{tmp_path}/w.db"
    try:
        assert await w.upsert([_candle(0), _candle(1), _candle(2, closed=False)]) == 2
        assert await w.upsert([_candle(1, close=101.5), _candle(3)]) == 2  # 1 is replaced, not duplicated
        stored = await CandleRepo(db).range("BTCUSDT", "1m")
        assert [c.open_time for c in stored] == [_candle(i).open_time for i in (0, 1, 3)]
        assert stored[1] == msgspec.structs.replace(_candle(1), close=101.5)
    finally:
        await w.close()
        await db.close()


async def test_waits_for_another_writer_in_its_thread_without_blocking_the_loop(tmp_path: Path) -> None:
    db = await _db(tmp_path)
    w = CandleWriter(db)
    w.prepare()
    other = sqlite3.connect(f"{tmp_path}/w.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds SQLite's lock
    try:
        assert w.submit([_candle(0)]) == 1  # returns at once
        flushed = asyncio.create_task(w.flush())
        ticks = 0
        for _ in range(20):  # the loop keeps running while the writer thread waits for the lock
            await asyncio.sleep(0.002)
            ticks += 1
        assert not flushed.done() and ticks == 20 and w.pending_rows == 1
        w.submit([_candle(1)])  # queued behind the blocked transaction: group-committed next
        w.submit([_candle(2)])
        other.execute("COMMIT")
        await asyncio.wait_for(w.flush(), 5)
        assert flushed.done() and w.pending_rows == 0 and w.committed_rows == 3
        assert w.commits == 2  # [0] then [1, 2] in one transaction
        stored = await CandleRepo(db).range("BTCUSDT", "1m")
        assert [c.open_time for c in stored] == [_candle(i).open_time for i in range(3)]
    finally:
        other.close()
        await w.close()
        await db.close()


async def test_a_failing_write_is_retried_in_order_until_stored(tmp_path: Path) -> None:
    db = await _db(tmp_path)
    w = CandleWriter(db, busy_timeout_s=0.01, retry_initial_s=0.005, retry_max_s=0.02)
    other = sqlite3.connect(f"{tmp_path}/w.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the writer's transactions fail ("database is locked") until released
    try:
        w.submit([_candle(0), _candle(1)])
        await eventually(lambda: w.write_errors >= 2, what="two failed attempts")  # retried, not dropped
        w.submit([_candle(1, close=99.0), _candle(2)])  # a later correction of 1 must win
        assert w.write_errors >= 2 and "locked" in (w.last_error or "") and w.pending_rows == 4
        other.execute("COMMIT")
        await asyncio.wait_for(w.flush(), 5)
        stored = await CandleRepo(db).range("BTCUSDT", "1m")
        assert [(c.open_time, c.close) for c in stored] == [
            (_candle(0).open_time, 101.0),
            (_candle(1).open_time, 99.0),
            (_candle(2).open_time, 101.0),
        ]
    finally:
        other.close()
        await w.close()
        await db.close()


async def test_close_commits_everything_submitted(tmp_path: Path) -> None:
    db = await _db(tmp_path)
    w = CandleWriter(db)
    for i in range(50):
        w.submit([_candle(i)])
    await w.close()
    assert w.pending_rows == 0
    assert len(await CandleRepo(db).range("BTCUSDT", "1m")) == 50
    with pytest.raises(RuntimeError, match="closed"):
        w.submit([_candle(51)])
    await db.close()


async def test_close_gives_up_after_its_timeout_when_the_store_stays_locked(tmp_path: Path) -> None:
    db = await _db(tmp_path)
    w = CandleWriter(db, busy_timeout_s=0.01, retry_initial_s=0.005, retry_max_s=0.01)
    other = sqlite3.connect(f"{tmp_path}/w.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        w.submit([_candle(0)])
        await asyncio.wait_for(w.close(timeout_s=0.2), 5)  # returns; the next start backfills the candle
        assert w.pending_rows == 1 and w.write_errors > 0
    finally:
        other.execute("COMMIT")
        other.close()
        await db.close()


async def test_in_memory_database_uses_the_sqlalchemy_path(tmp_path: Path) -> None:
    db = Database("sqlite+aiosqlite:///:memory:")
    await db.migrate()
    w = CandleWriter(db)
    try:
        assert db.sqlite_path is None
        assert await w.upsert([_candle(0), _candle(0, close=100.5)]) == 2
        assert [c.close for c in await CandleRepo(db).range("BTCUSDT", "1m")] == [100.5]
    finally:
        await w.close()
        await db.close()
