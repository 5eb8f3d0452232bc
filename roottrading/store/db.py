"""Database handle: async engine, sessions, migrations and dialect-aware upserts.

SQLite (the embedded default) and PostgreSQL run the same code; TimescaleDB is used when the extension
is available (market_data becomes a compressed hypertable), detected and logged at migration time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from roottrading.store.checkpoint import WalCheckpointer

log = structlog.get_logger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


def sqlite_synchronous(durable: bool) -> str:
    """FULL in live mode: with WAL, NORMAL can lose the last commits on a power cut (not on a process crash);
    a lost commit could be an order intent whose order already reached the exchange. NORMAL elsewhere
    (demo, paper, backtest): nothing real is at stake there and commits stay cheaper."""
    return "FULL" if durable else "NORMAL"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any, *, durable: bool = False) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cur.execute(f"PRAGMA synchronous={sqlite_synchronous(durable)}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA wal_autocheckpoint=0")  # WalCheckpointer does it off the commit path (checkpoint.py)
    cur.close()


class Database:
    """One per process. `url` is a SQLAlchemy async URL (sqlite+aiosqlite:///..., postgresql+asyncpg://...)."""

    def __init__(self, url: str, *, echo: bool = False, schema: str | None = None, durable: bool = False) -> None:
        """`durable=True` (live trading): SQLite commits are synced to disk (synchronous=FULL), see
        `sqlite_synchronous`. PostgreSQL is durable by its own configuration (synchronous_commit)."""
        self.durable = durable
        if url.startswith("sqlite") and ":///" in url and ":memory:" not in url:
            Path(url.split(":///", 1)[1]).expanduser().parent.mkdir(parents=True, exist_ok=True)
        if url.startswith("postgresql://"):
            url = "postgresql+asyncpg://" + url.removeprefix("postgresql://")
        self.url = url
        kwargs: dict[str, Any] = {"echo": echo}
        if url.startswith("postgresql"):
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
            if schema:  # isolates test runs sharing one database
                kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
        self.schema = schema
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            event.listen(self.engine.sync_engine, "connect", lambda c, r: _sqlite_pragmas(c, r, durable=self.durable))
        self.timescale = False
        self.sqlite_path: str | None = None  # the file of a file-backed SQLite database (lanes, writers, checkpoints)
        if self.dialect == "sqlite" and ":///" in url and ":memory:" not in url and "mode=memory" not in url:
            self.sqlite_path = str(Path(url.split(":///", 1)[1].split("?", 1)[0]).expanduser()) or None
        self.checkpointer = WalCheckpointer(self.sqlite_path) if self.sqlite_path else None

    def begin(self) -> Any:
        """A transaction: `async with db.begin() as conn:` commits on success, rolls back on error."""
        return self.engine.begin()

    def connect(self) -> Any:
        return self.engine.connect()

    async def migrate(self) -> None:
        """Bring the schema to the latest Alembic revision (idempotent)."""
        if self.schema and self.dialect == "postgresql":
            async with self.engine.begin() as conn:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
        async with self.engine.begin() as conn:
            await conn.run_sync(_upgrade)
            if self.dialect == "postgresql":
                self.timescale = bool(
                    (await conn.execute(text("SELECT 1 FROM pg_extension WHERE extname='timescaledb'"))).scalar()
                )
        log.info("database migrated", dialect=self.dialect, timescale=self.timescale)
        if self.checkpointer is not None:
            self.checkpointer.start()

    async def ping(self) -> bool:
        async with self.engine.connect() as conn:
            return (await conn.execute(text("SELECT 1"))).scalar() == 1

    async def close(self) -> None:
        from roottrading.store.lanes import close_lanes  # lanes are built lazily by the order path

        await asyncio.to_thread(close_lanes, self)  # waits for queued lane transactions to finish
        await self.engine.dispose()
        if self.checkpointer is not None:
            await self.checkpointer.stop()

    async def drop_schema(self) -> None:
        """Remove a test schema (PostgreSQL only)."""
        if self.schema and self.dialect == "postgresql":
            async with self.engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))

    def upsert(
        self, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str], update: Sequence[str] | None = None
    ) -> Any:
        """INSERT ... ON CONFLICT (keys) DO UPDATE (or DO NOTHING when `update` is empty)."""
        ins = (postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)).values(list(rows))
        cols = [c.name for c in table.columns if c.name not in keys] if update is None else list(update)
        if not cols:
            return ins.on_conflict_do_nothing(index_elements=list(keys))
        return ins.on_conflict_do_update(index_elements=list(keys), set_={c: ins.excluded[c] for c in cols})


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")
