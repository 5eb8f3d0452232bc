"""run_txn: one-hop transactions on a file SQLite (the order path's store writes), async engine elsewhere."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Connection, select

from roottrading.domain import CycleStatus, Order, OrderType, Side, TradeCycle
from roottrading.store import CycleRepo, Database, OrderRepo
from roottrading.store.lanes import lane_for
from roottrading.store.repos_system import run_txn, upsert_stmt
from roottrading.store.tables import decisions, trade_cycles
from tests.waiting import eventually


class Boom(Exception):
    pass


def row(sid: str) -> dict[str, object]:
    return {
        "signal_id": sid,
        "time": 1,
        "symbol": "X",
        "strategy": "s",
        "decision": "accepted",
        "reason": "r",
        "details": {"q": "1.5"},
    }


@pytest.fixture
async def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    d = Database(f"sqlite+aiosqlite:///{tmp_path}/l.db")
    await d.migrate()
    yield d
    await d.close()


async def test_commits_rolls_back_and_is_seen_by_the_async_engine(db: Database) -> None:
    assert lane_for(db) is not None and lane_for(db, read=True) is not lane_for(db)
    await run_txn(db, lambda c: c.execute(decisions.insert(), row("ok")))

    def half_then_fail(c: Connection) -> None:
        c.execute(decisions.insert(), row("lost"))
        raise Boom

    with pytest.raises(Boom):
        await run_txn(db, half_then_fail)
    async with db.connect() as conn:  # another connection (aiosqlite pool) sees exactly the committed row
        got = (await conn.execute(select(decisions.c.signal_id, decisions.c.details))).all()
    assert [(r[0], r[1]) for r in got] == [("ok", {"q": "1.5"})]
    seen = await run_txn(db, lambda c: c.execute(select(decisions.c.signal_id)).scalars().all(), read=True)
    assert seen == ["ok"]


async def test_insert_if_new_is_compiled_once_and_reports_duplicates(db: Database) -> None:
    stmt = upsert_stmt(db, trade_cycles, ["id"], update=[])
    assert upsert_stmt(db, trade_cycles, ["id"], update=[]) is stmt
    c = TradeCycle(
        id="cy",
        symbol="BTCUSDT",
        strategy="s",
        side=Side.BUY,
        status=CycleStatus.INITIATING,
        created_at=1,
        updated_at=1,
        stop_loss=Decimal("0.000000001"),
    )
    o = Order(
        client_order_id="co",
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.MARKET,
        quantity=Decimal("0.00012"),
        cycle_id="cy",
        created_at=1,
        updated_at=1,
    )
    repo = CycleRepo(db)
    assert await repo.create_with_order(c, o, demo=True) is True
    assert await repo.create_with_order(c, o, demo=True) is False  # redelivered: nothing written twice
    back = await repo.get("cy")
    assert back is not None and back.stop_loss == Decimal("1E-9")  # exact Decimal through the lane
    assert (await OrderRepo(db).get("co")).quantity == Decimal("0.00012")  # type: ignore[union-attr]


async def test_in_memory_sqlite_uses_the_async_engine() -> None:
    d = Database("sqlite+aiosqlite:///:memory:")
    try:
        assert lane_for(d) is None
        assert await run_txn(d, lambda c: c.exec_driver_sql("select 41 + 1").scalar()) == 42
    finally:
        await d.close()


async def test_on_the_loop_when_free_in_the_thread_when_sqlite_is_locked_and_in_order(
    db: Database, tmp_path: Path
) -> None:
    import asyncio
    import sqlite3

    lane = lane_for(db)
    assert lane is not None
    await run_txn(db, lambda c: c.execute(decisions.insert(), row("a")))
    assert (lane.on_loop, lane.in_thread) == (1, 0)  # uncontended: no thread hop

    other = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds SQLite's lock
    try:
        first = asyncio.create_task(run_txn(db, lambda c: c.execute(decisions.insert(), row("b"))))
        await eventually(lambda: lane.queued == 1, what="the first transaction queued in the lane")
        assert not first.done()  # waiting in the lane's thread, the loop runs on
        second = asyncio.create_task(run_txn(db, lambda c: c.execute(decisions.insert(), row("c"))))
        # queued behind the first, not run on the loop ahead of it
        await eventually(lambda: lane.queued == 2, what="the second transaction queued behind the first")
        assert not first.done() and not second.done()
    finally:
        other.execute("COMMIT")
        other.close()
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert lane.in_thread == 2 and lane.queued == 0
    async with db.connect() as conn:
        got = (await conn.execute(select(decisions.c.signal_id).order_by(decisions.c.id))).scalars().all()
    assert got == ["a", "b", "c"]
    await run_txn(db, lambda c: c.execute(decisions.insert(), row("d")))
    assert lane.on_loop == 2  # free again: back on the loop
    read = lane_for(db, read=True)
    assert read is not None
    await run_txn(db, lambda c: c.execute(select(decisions.c.signal_id)).all(), read=True)
    assert read.on_loop == 1
