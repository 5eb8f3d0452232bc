"""Candles and signals: upserted by natural key, so replays and backfills never create duplicates."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from roottrading.domain import Candle, Side, Signal, SignalStrength
from roottrading.store.db import Database
from roottrading.store.tables import market_data, trading_signals

_CANDLE_FIELDS = [f for f in Candle.__struct_fields__ if f != "closed"]


class CandleRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def upsert(self, candles: Iterable[Candle]) -> int:
        """Insert or replace closed candles keyed by (symbol, interval, open_time). Returns rows written."""
        rows = [{f: getattr(c, f) for f in _CANDLE_FIELDS} for c in candles if c.closed]
        if not rows:
            return 0
        async with self.db.begin() as conn:
            for i in range(0, len(rows), 500):  # stay under SQLite's bound-parameter limit
                await conn.execute(self.db.upsert(market_data, rows[i : i + 500], ["symbol", "interval", "open_time"]))
        return len(rows)

    async def range(
        self, symbol: str, interval: str, start: int | None = None, end: int | None = None, limit: int | None = None
    ) -> list[Candle]:
        """Candles with start <= open_time <= end, oldest first; with only `limit`, the latest `limit`."""
        q = select(market_data).where(market_data.c.symbol == symbol, market_data.c.interval == interval)
        if start is not None:
            q = q.where(market_data.c.open_time >= start)
        if end is not None:
            q = q.where(market_data.c.open_time <= end)
        if limit is not None and start is None:
            q = q.order_by(market_data.c.open_time.desc()).limit(limit)
        else:
            q = q.order_by(market_data.c.open_time)
            if limit is not None:
                q = q.limit(limit)
        async with self.db.connect() as conn:
            rows = (await conn.execute(q)).mappings().all()
        out = [Candle(**{k: r[k] for k in _CANDLE_FIELDS}) for r in rows]
        if limit is not None and start is None:
            out.reverse()
        return out

    async def last_open_time(self, symbol: str, interval: str) -> int | None:
        q = select(func.max(market_data.c.open_time)).where(
            market_data.c.symbol == symbol, market_data.c.interval == interval
        )
        async with self.db.connect() as conn:
            return (await conn.execute(q)).scalar()

    async def count(self, symbol: str, interval: str) -> int:
        q = (
            select(func.count())
            .select_from(market_data)
            .where(market_data.c.symbol == symbol, market_data.c.interval == interval)
        )
        async with self.db.connect() as conn:
            return int((await conn.execute(q)).scalar() or 0)


class SignalRepo:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert_ignore: Any = None

    async def add_many(self, signals: Sequence[Signal]) -> None:
        """Store several signals (one candle's) in ONE transaction, each once by its id.

        Why: the analyzer stores every signal of a candle before publishing it; a transaction per signal, with
        its multi-row INSERT compiled afresh each time, was most of the analyzer's cost per candle on
        PostgreSQL. Here one statement, compiled once (rows are parameters), runs for all of them."""
        if not signals:
            return
        if self._insert_ignore is None:
            dialect = postgresql if self.db.dialect == "postgresql" else sqlite
            self._insert_ignore = dialect.insert(trading_signals).on_conflict_do_nothing(index_elements=["id"])
        rows = [msgspec.to_builtins(s) for s in signals]
        if self.db.dialect != "postgresql":
            async with self.db.begin() as conn:
                await conn.execute(self._insert_ignore, rows)
            return
        # PostgreSQL: asyncpg runs the rows (one statement, or a pipelined executemany that it wraps in its own
        # transaction) atomically, so autocommit saves the BEGIN and COMMIT round trips of an explicit one
        async with self.db.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(self._insert_ignore, rows)

    async def add(self, signal: Signal) -> bool:
        """Store a signal once (by its deterministic id). Returns False if it was already stored."""
        row = msgspec.to_builtins(signal)
        async with self.db.begin() as conn:
            res = await conn.execute(self.db.upsert(trading_signals, [row], ["id"], update=[]))
        return bool(res.rowcount)

    async def query(
        self, *, symbol: str | None = None, strategy: str | None = None, limit: int = 50, before: int | None = None
    ) -> list[Signal]:
        q = select(trading_signals)
        if symbol:
            q = q.where(trading_signals.c.symbol == symbol)
        if strategy:
            q = q.where(trading_signals.c.strategy == strategy)
        if before is not None:
            q = q.where(trading_signals.c.time < before)
        q = q.order_by(trading_signals.c.time.desc()).limit(max(1, min(limit, 1000)))
        async with self.db.connect() as conn:
            rows = (await conn.execute(q)).mappings().all()
        return [_signal(r) for r in rows]


def _signal(r: Any) -> Signal:
    return Signal(
        id=r["id"],
        time=r["time"],
        symbol=r["symbol"],
        strategy=r["strategy"],
        side=Side(r["side"]),
        strength=SignalStrength(r["strength"]),
        price=r["price"],
        interval=r["interval"],
        stop_loss=r["stop_loss"],
        take_profit=r["take_profit"],
        trailing_pct=r["trailing_pct"],
        regime=r["regime"],
        meta=r["meta"] or {},
        tag=r["tag"],
    )


def chunks(seq: Sequence[Any], n: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]
