"""WAL checkpoints run in the background, never inside a commit (store/checkpoint.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from sqlalchemy import text

from roottrading.store import Database
from roottrading.store.repos_system import run_txn


async def test_commits_never_checkpoint_and_the_background_task_does(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/c.db")
    assert db.checkpointer is not None
    db.checkpointer.max_wal_bytes = 64 << 10
    db.checkpointer.poll_s = 0.01
    await db.migrate()
    try:
        async with db.connect() as conn:
            assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == 0
        assert await run_txn(db, lambda c: c.execute(text("PRAGMA wal_autocheckpoint")).scalar()) == 0
        before = db.checkpointer.checkpoints
        for i in range(300):  # ~1 MB of WAL: far past SQLite's own 1000-page automatic threshold
            async with db.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO event_logs (message_id, time, level, service, event, context) "
                        "VALUES (:id, 0, 'info', 't', :ev, '{}')"
                    ),
                    {"id": f"m{i}", "ev": "x" * 3000},
                )
        for _ in range(200):
            if db.checkpointer.checkpoints > before:
                break
            await asyncio.sleep(0.01)
        assert db.checkpointer.checkpoints > before
    finally:
        await db.close()
    with sqlite3.connect(tmp_path / "c.db") as other:  # close() ran a last checkpoint: nothing left to copy
        busy, log_frames, copied = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert busy == 0 and log_frames == copied


def test_memory_and_postgres_urls_have_no_checkpointer() -> None:
    assert Database("sqlite+aiosqlite:///:memory:").checkpointer is None
    assert Database("postgresql+asyncpg://u@127.0.0.1/x").checkpointer is None
