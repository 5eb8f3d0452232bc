"""Safety state documents (table `safety_state`): what must survive a restart, one JSON document per owner.

Why documents and not columns: each owner (the risk manager, the trader, the paper account) knows its own
state's shape and restores it whole; the store only has to keep the last committed version, atomically.
A document is written before the change it records is announced, so a crash can lose an announcement (the
state is re-read at start) but never a kill switch that was already acted on.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from roottrading.store.db import Database
from roottrading.store.repos_system import run_txn, upsert_stmt
from roottrading.store.tables import safety_state


class SafetyStateRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, key: str) -> dict[str, Any] | None:
        """The last stored document of `key`, None if there is none yet."""

        def txn(conn: Connection) -> dict[str, Any] | None:
            row = conn.execute(select(safety_state.c.doc).where(safety_state.c.key == key)).first()
            return dict(row[0]) if row is not None else None

        return await run_txn(self.db, txn, read=True)

    async def put(self, key: str, doc: dict[str, Any], now_ms: int) -> None:
        """Replace the document of `key` (committed when this returns)."""
        await run_txn(self.db, lambda conn: self.put_in(conn, key, doc, now_ms))

    def put_in(self, conn: Connection, key: str, doc: dict[str, Any], now_ms: int) -> None:
        """The same write inside the caller's (sync) transaction, with the change it records."""
        conn.execute(upsert_stmt(self.db, safety_state, ["key"]), {"key": key, "doc": doc, "updated_at": now_ms})
