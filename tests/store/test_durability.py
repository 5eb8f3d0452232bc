"""Live trading syncs every SQLite commit to disk (issue 17, item 13).

With WAL and synchronous=NORMAL a power cut can roll back the last commits; one of them can be an order
intent whose order already reached the exchange. Live mode uses synchronous=FULL on every connection the
order path opens (the async engine and both SQLite lanes); demo/paper/backtest keep NORMAL.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from roottrading.store import Database
from roottrading.store.lanes import lane_for

FULL, NORMAL = 2, 1


def _sync_level(conn: Connection) -> int:
    return int(conn.execute(text("PRAGMA synchronous")).scalar_one())


@pytest.mark.parametrize(("durable", "level"), [(True, FULL), (False, NORMAL)])
async def test_every_connection_uses_the_mode_s_synchronous_level(tmp_path: Path, durable: bool, level: int) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/d.db", durable=durable)
    try:
        await db.migrate()
        async with db.connect() as conn:
            assert int((await conn.execute(text("PRAGMA synchronous"))).scalar_one()) == level
        write_lane = lane_for(db)
        assert write_lane is not None
        assert await write_lane.run(_sync_level) == level
    finally:
        await db.close()


@pytest.mark.parametrize(("mode", "durable"), [("live", True), ("demo", False)])
async def test_the_host_asks_for_durable_commits_in_live_mode_only(tmp_path: Path, mode: str, durable: bool) -> None:
    from roottrading.config import load_settings
    from roottrading.runtime import Host

    settings = load_settings(
        trading_mode=mode,
        binance_api_key="k",
        binance_secret_key="s",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/h.db",
        data_dir=tmp_path,
        api_token="t",
    )
    host = Host(settings, [])
    try:
        assert host.db.durable is durable
    finally:
        await host.db.close()
