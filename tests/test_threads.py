"""Background executors lower only their own thread's CPU priority (roottrading/threads.py), and the store's
background work (the gateway's candle writer, WAL checkpoints) runs in such threads, never at the loop's."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from roottrading.domain import Candle
from roottrading.services.gateway.writer import CandleWriter
from roottrading.store import Database
from roottrading.store.checkpoint import WalCheckpointer
from roottrading.threads import BACKGROUND_NICE, background_executor

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priority is Linux-only")


def _nice_of_this_thread() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_background_executor_thread_is_nicer_and_the_caller_is_not() -> None:
    before = _nice_of_this_thread()
    pool = background_executor("t", nice=5)
    try:
        worker = pool.submit(_nice_of_this_thread).result(5)
    finally:
        pool.shutdown(wait=True)
    assert worker == min(19, before + 5)
    assert _nice_of_this_thread() == before  # the calling thread (the event loop's) keeps its priority


async def test_candle_commits_and_checkpoints_run_at_background_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_nice = _nice_of_this_thread()
    seen: dict[str, int] = {}
    write, checkpoint = CandleWriter._write_sqlite, WalCheckpointer.checkpoint

    def spy_write(self: CandleWriter, rows: list[tuple[object, ...]]) -> None:
        seen["commit"] = _nice_of_this_thread()
        write(self, rows)

    def spy_checkpoint(self: WalCheckpointer) -> None:
        seen["checkpoint"] = _nice_of_this_thread()
        checkpoint(self)

    monkeypatch.setattr(CandleWriter, "_write_sqlite", spy_write)
    monkeypatch.setattr(WalCheckpointer, "checkpoint", spy_checkpoint)
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/p.db")
    await db.migrate()  # starts the database's checkpointer
    writer = CandleWriter(db)
    t = 1_704_067_200_000
    await writer.upsert(
        [
            Candle(
                symbol="BTCUSDT",
                interval="1m",
                open_time=t,
                close_time=t + 59_999,
                open=1.0,
                high=1.0,
                low=1.0,
                close=1.0,
                volume=1.0,
            )
        ]
    )
    await writer.close()
    await db.close()  # runs a last checkpoint
    expected = min(19, loop_nice + BACKGROUND_NICE)
    assert seen == {"commit": expected, "checkpoint": expected}
    assert _nice_of_this_thread() == loop_nice
