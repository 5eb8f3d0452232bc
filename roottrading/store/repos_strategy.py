"""Per-strategy state documents (table `strategy_state`, see roottrading/strategies/state.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from roottrading.store.db import Database
from roottrading.store.tables import strategy_state


class StrategyStateRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def all(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Every stored (strategy, symbol, document): what the analyzer restores at start."""
        q = select(strategy_state.c.strategy, strategy_state.c.symbol, strategy_state.c.doc)
        async with self.db.connect() as conn:
            rows = (await conn.execute(q)).all()
        return [(r[0], r[1], dict(r[2] or {})) for r in rows]

    async def save(self, docs: Sequence[tuple[str, str, dict[str, Any]]], now_ms: int) -> None:
        """Replace the documents of these (strategy, symbol) pairs, in one transaction."""
        if not docs:
            return
        rows = [{"strategy": n, "symbol": s, "doc": d, "updated_at": now_ms} for n, s, d in docs]
        async with self.db.begin() as conn:
            await conn.execute(self.db.upsert(strategy_state, rows, ["strategy", "symbol"]))
