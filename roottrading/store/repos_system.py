"""Event logs, coordinator decisions and consumer idempotency."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from roottrading.store.db import Database
from roottrading.store.tables import decisions, event_logs, processed_messages


class EventLogRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_many(self, rows: list[dict[str, Any]]) -> int:
        """rows: message_id, time, level, service, event, context. Duplicates (same message_id) are ignored."""
        if not rows:
            return 0
        async with self.db.begin() as conn:
            res = await conn.execute(self.db.upsert(event_logs, rows, ["message_id"], update=[]))
        return int(res.rowcount or 0)

    async def query(self, *, level: str | None = None, service: str | None = None, since: int | None = None,
                    q: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        stmt = select(event_logs)
        if level:
            stmt = stmt.where(event_logs.c.level == level.lower())
        if service:
            stmt = stmt.where(event_logs.c.service == service)
        if since is not None:
            stmt = stmt.where(event_logs.c.time >= since)
        if q:
            stmt = stmt.where(or_(event_logs.c.event.contains(q, autoescape=True)))
        stmt = stmt.order_by(event_logs.c.time.desc(), event_logs.c.id.desc()).limit(max(1, min(limit, 5000)))
        async with self.db.connect() as conn:
            return [dict(r) for r in (await conn.execute(stmt)).mappings().all()]


class DecisionRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, *, signal_id: str, time: int, symbol: str, strategy: str, decision: str, reason: str,
                  details: dict[str, Any] | None = None) -> None:
        async with self.db.begin() as conn:
            await conn.execute(decisions.insert().values(signal_id=signal_id, time=time, symbol=symbol,
                                                         strategy=strategy, decision=decision, reason=reason,
                                                         details=details or {}))

    async def query(self, *, signal_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        stmt = select(decisions)
        if signal_id:
            stmt = stmt.where(decisions.c.signal_id == signal_id)
        stmt = stmt.order_by(decisions.c.time.desc(), decisions.c.id.desc()).limit(limit)
        async with self.db.connect() as conn:
            return [dict(r) for r in (await conn.execute(stmt)).mappings().all()]


class Processed:
    """Exactly-once effects over an at-least-once bus: record (consumer, message id) in the same transaction
    as the effect; a redelivered message finds its row and is skipped."""

    def __init__(self, db: Database, consumer: str) -> None:
        self.db, self.consumer = db, consumer

    async def claim(self, conn: Any, message_id: str, time: int) -> bool:
        """Inside the caller's transaction: True if this message is new (and is now marked done)."""
        res = await conn.execute(self.db.upsert(processed_messages, [
            {"consumer": self.consumer, "message_id": message_id, "time": time}], ["consumer", "message_id"],
            update=[]))
        return bool(res.rowcount)
