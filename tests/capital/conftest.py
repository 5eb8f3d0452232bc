"""Capital tests run on SQLite and on the real PostgreSQL server (per-test schema), like tests/store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roottrading.store import Database


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path, unique: str) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        database = Database(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    else:
        url = request.getfixturevalue("postgres_url")
        database = Database(url, schema=f"t_{unique}")
    await database.migrate()
    try:
        yield database
    finally:
        await database.drop_schema()
        await database.close()


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path}/s.db")
    await database.migrate()
    try:
        yield database
    finally:
        await database.close()
