"""Orders (trade_executions), fills and trade cycles. Every state change is written here before it is
announced on the bus, so a restart can always rebuild the truth from the store plus the exchange."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import ColumnElement, Connection, bindparam, func, select, update

from roottrading.domain import CycleStatus, Fill, Order, OrderStatus, OrderType, Side, TimeInForce, TradeCycle
from roottrading.store.db import Database
from roottrading.store.repos_system import run_txn, upsert_stmt
from roottrading.store.tables import pocket_reservations, trade_cycles, trade_executions, trade_fills

_CYCLE_FIELDS = list(TradeCycle.__struct_fields__)


def _order_row(o: Order, demo: bool) -> dict[str, Any]:
    return {
        "order_id": o.client_order_id,
        "exchange_order_id": o.exchange_order_id,
        "cycle_id": o.cycle_id,
        "symbol": o.symbol,
        "side": o.side.value,
        "type": o.type.value,
        "status": o.status.value,
        "time_in_force": o.time_in_force.value,
        "price": o.price,
        "stop_price": o.stop_price,
        "quantity": o.quantity,
        "executed_quantity": o.executed_quantity,
        "quote_quantity": o.cumulative_quote,
        "reject_reason": o.reject_reason,
        "demo": demo,
        "created_at": o.created_at,
        "updated_at": o.updated_at,
    }


def _order(r: Any) -> Order:
    return Order(
        client_order_id=r["order_id"],
        exchange_order_id=r["exchange_order_id"],
        cycle_id=r["cycle_id"],
        symbol=r["symbol"],
        side=Side(r["side"]),
        type=OrderType(r["type"]),
        status=OrderStatus(r["status"]),
        time_in_force=TimeInForce(r["time_in_force"]),
        price=r["price"],
        stop_price=r["stop_price"],
        quantity=r["quantity"],
        executed_quantity=r["executed_quantity"],
        cumulative_quote=r["quote_quantity"],
        reject_reason=r["reject_reason"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


class OrderRepo:
    def __init__(self, db: Database, *, demo: bool = True) -> None:
        self.db, self.demo = db, demo

    async def save(self, order: Order) -> None:
        stmt, row = upsert_stmt(self.db, trade_executions, ["order_id"]), _order_row(order, self.demo)
        await run_txn(self.db, lambda conn: conn.execute(stmt, row))

    async def get(self, client_order_id: str) -> Order | None:
        async with self.db.connect() as conn:
            r = (
                (await conn.execute(select(trade_executions).where(trade_executions.c.order_id == client_order_id)))
                .mappings()
                .first()
            )
        return _order(r) if r else None

    async def query(
        self,
        *,
        symbol: str | None = None,
        status: list[str] | None = None,
        cycle_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Order]:
        q = select(trade_executions)
        if symbol:
            q = q.where(trade_executions.c.symbol == symbol)
        if status:
            q = q.where(trade_executions.c.status.in_(status))
        if cycle_id:
            q = q.where(trade_executions.c.cycle_id == cycle_id)
        q = q.order_by(trade_executions.c.created_at.desc()).limit(limit).offset(offset)
        async with self.db.connect() as conn:
            return [_order(r) for r in (await conn.execute(q)).mappings().all()]

    async def open_orders(self) -> list[Order]:
        live = [s.value for s in OrderStatus if not s.is_terminal]
        return await self.query(status=live, limit=10_000)

    async def add_fill(self, fill: Fill) -> bool:
        """Store a fill once, keyed by (symbol, trade id) as Binance's trade ids are. False if already known."""
        row = msgspec.to_builtins(fill)
        for k in ("price", "quantity", "quote_quantity", "commission", "commission_quote"):
            row[k] = getattr(fill, k)
        row["order_id"] = row.pop("client_order_id")
        row["exchange_order_id"] = fill.order_id
        stmt = upsert_stmt(self.db, trade_fills, ["symbol", "trade_id"], update=[])
        return bool(await run_txn(self.db, lambda conn: conn.execute(stmt, row).rowcount))

    async def fills(
        self, *, order_id: str | None = None, symbol: str | None = None, limit: int = 500, offset: int = 0
    ) -> list[dict[str, Any]]:
        q = select(trade_fills)
        if order_id:
            q = q.where(trade_fills.c.order_id == order_id)
        if symbol:
            q = q.where(trade_fills.c.symbol == symbol)
        q = q.order_by(trade_fills.c.time.desc()).limit(limit).offset(offset)
        async with self.db.connect() as conn:
            return [dict(r) for r in (await conn.execute(q)).mappings().all()]


class ReservationNotLive(Exception):
    """The entry's reservation was released (e.g. by reconciliation) before the order could be sent."""


_claim = (
    update(pocket_reservations)
    .where(pocket_reservations.c.id == bindparam("rid"), pocket_reservations.c.status == "reserved")
    .values(updated_at=bindparam("now"))
)


class CycleRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def save(self, cycle: TradeCycle) -> None:
        row = {f: getattr(cycle, f) for f in _CYCLE_FIELDS}
        row["side"], row["status"] = cycle.side.value, cycle.status.value
        stmt = upsert_stmt(self.db, trade_cycles, ["id"])
        await run_txn(self.db, lambda conn: conn.execute(stmt, row))

    async def create_with_order(self, cycle: TradeCycle, order: Order, *, demo: bool) -> bool:
        """Store a new cycle and its entry intent in ONE transaction, only if the cycle id is new.

        With a reservation, the same transaction claims it (still `reserved`: its `updated_at` moves to now,
        which the portfolio's stale-reservation release checks under the row lock); a reservation released
        meanwhile raises ReservationNotLive and nothing is written, so no entry is sent on released funds.

        False (and nothing written) when the cycle already exists: the request was redelivered. One commit
        instead of a read and two commits is what keeps signal -> order-sent short."""
        row = {f: getattr(cycle, f) for f in _CYCLE_FIELDS}
        row["side"], row["status"] = cycle.side.value, cycle.status.value
        cycle_ins = upsert_stmt(self.db, trade_cycles, ["id"], update=[])
        order_ins = upsert_stmt(self.db, trade_executions, ["order_id"])
        order_row = _order_row(order, demo)

        res_id = cycle.reservation_id

        def txn(conn: Connection) -> bool:
            if not conn.execute(cycle_ins, row).rowcount:
                return False
            if res_id and not conn.execute(_claim, {"rid": res_id, "now": cycle.created_at}).rowcount:
                raise ReservationNotLive(res_id)  # rolls the cycle insert back: nothing written
            conn.execute(order_ins, order_row)
            return True

        return await run_txn(self.db, txn)  # one step on SQLite (see store/lanes.py)

    async def get(self, cycle_id: str) -> TradeCycle | None:
        async with self.db.connect() as conn:
            r = (await conn.execute(select(trade_cycles).where(trade_cycles.c.id == cycle_id))).mappings().first()
        return _cycle(r) if r else None

    async def query(
        self,
        *,
        status: list[str] | None = None,
        symbol: str | None = None,
        strategy: str | None = None,
        limit: int = 50,
        offset: int = 0,
        since: int | None = None,
    ) -> tuple[list[TradeCycle], int]:
        """A page of cycles (newest first) and the total count matching the filters."""
        conds: list[ColumnElement[bool]] = []
        if status:
            conds.append(trade_cycles.c.status.in_(status))
        if symbol:
            conds.append(trade_cycles.c.symbol == symbol)
        if strategy:
            conds.append(trade_cycles.c.strategy == strategy)
        if since is not None:
            conds.append(trade_cycles.c.created_at >= since)
        q = select(trade_cycles).where(*conds).order_by(trade_cycles.c.created_at.desc()).limit(limit).offset(offset)
        cq = select(func.count()).select_from(trade_cycles).where(*conds)
        async with self.db.connect() as conn:
            rows = (await conn.execute(q)).mappings().all()
            total = int((await conn.execute(cq)).scalar() or 0)
        return [_cycle(r) for r in rows], total

    async def open_cycles(self) -> list[TradeCycle]:
        live = [s.value for s in CycleStatus if not s.is_terminal]
        return (await self.query(status=live, limit=100_000))[0]


def _cycle(r: Any) -> TradeCycle:
    d = {f: r[f] for f in _CYCLE_FIELDS}
    d["side"], d["status"] = Side(d["side"]), CycleStatus(d["status"])
    return TradeCycle(**d)
