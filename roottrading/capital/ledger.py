"""PocketLedger: capital pockets (active / buffer / safety) with reservations, stored atomically.

Why a ledger: the coordinator must set money aside *before* it lets a trade go out, and two concurrent
signals must never both spend the same free capital. Every mutation is one database transaction whose
first statement is a write, so:

- on PostgreSQL the pocket row is read with `SELECT ... FOR UPDATE` (and a reservation id is claimed by
  its primary-key insert), so concurrent callers queue on the row lock and each sees the last commit;
- on SQLite the first write takes the single writer lock, so the read-modify-write that follows is
  serialised too (no stale read snapshot can precede it).
The arithmetic is done in Python on exact Decimals (SQLite keeps Money as text).

Invariants kept per pocket: `used_value + available_value == current_value`, no value below zero,
and after `reallocate(total)` the pockets' `current_value` sum to `total` (as long as `total` covers the
capital already used; see `reallocate`).

A reservation moves `reserved -> consumed -> released` (or `reserved -> released`). Each transition is a
conditional update on its status, so a repeated consume/release (a redelivered message, a retry) is a no-op.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any

import msgspec
import structlog
from sqlalchemy import Connection, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from roottrading.clock import Clock
from roottrading.domain import Pocket
from roottrading.store.db import Database
from roottrading.store.repos_system import run_txn, upsert_stmt
from roottrading.store.tables import capital_pockets, pocket_reservations

log = structlog.get_logger(__name__)

ZERO = Decimal(0)
HUNDRED = Decimal(100)
# Money in the ledger is kept to 12 decimal places: exact in NUMERIC(38, 18) and in SQLite text,
# and far below any exchange's tick (Binance quote precision is 8).
MONEY_Q = Decimal("1e-12")

RESERVED, CONSUMED, RELEASED = "reserved", "consumed", "released"


def fmt(value: Decimal | None) -> str | None:
    """Plain decimal text without exponent or trailing zeros ('1E+3' -> '1000', '2.50' -> '2.5')."""
    if value is None:
        return None
    return format(value.normalize(), "f") if value else "0"


class InsufficientFunds(Exception):
    """A reservation larger than what the pocket has available."""

    def __init__(self, pocket: str, requested: Decimal, available: Decimal) -> None:
        super().__init__(
            f"insufficient funds in pocket {pocket!r}: requested {fmt(requested)}, available {fmt(available)}"
        )
        self.pocket, self.requested, self.available = pocket, requested, available


class Reservation(msgspec.Struct, frozen=True, kw_only=True):
    """Money set aside in a pocket for one request / cycle."""

    id: str
    pocket_type: str
    amount: Decimal
    status: str  # reserved, consumed, released
    cycle_id: str | None = None
    reason: str = ""
    created_at: int = 0
    updated_at: int = 0


def q(value: Decimal) -> Decimal:
    """Quantise money to the ledger's precision, rounding down (never set aside more than asked)."""
    return value.quantize(MONEY_Q, rounding=ROUND_DOWN).normalize()


def validate_allocation(config: dict[str, Decimal]) -> dict[str, Decimal]:
    """Check a pocket allocation in percent: non-empty names, no negatives, sums to exactly 100."""
    if not config:
        raise ValueError("pocket allocation is empty: give at least one pocket, e.g. {'active': 100}")
    out: dict[str, Decimal] = {}
    for name, pct in config.items():
        if not isinstance(name, str) or not name.strip() or len(name) > 20:
            raise ValueError(f"pocket name {name!r} must be a non-empty string of at most 20 characters")
        try:
            d = Decimal(str(pct))
        except ArithmeticError:
            raise ValueError(f"pocket {name!r}: {pct!r} is not a number") from None
        if not d.is_finite():
            raise ValueError(f"pocket {name!r}: percentage must be finite, got {pct!r}")
        if d < 0:
            raise ValueError(f"pocket {name!r}: percentage cannot be negative, got {d}")
        out[name.strip()] = d
    total = sum(out.values(), ZERO)
    if total != HUNDRED:
        raise ValueError(f"pocket percentages must sum to 100, got {total}")
    return out


def split_total(total: Decimal, percents: dict[str, Decimal]) -> dict[str, Decimal]:
    """Targets per pocket from percentages; the rounding remainder goes to the largest pocket so the
    parts sum to `total` exactly."""
    targets = {name: q(total * pct / HUNDRED) for name, pct in percents.items()}
    if targets:
        biggest = max(percents, key=lambda n: (percents[n], n))
        targets[biggest] += total - sum(targets.values(), ZERO)
    return targets


def fit_to_used(targets: dict[str, Decimal], used: dict[str, Decimal]) -> dict[str, Decimal]:
    """Raise pockets whose target is below their used capital up to it, taking the difference from the
    other pockets' spare room in proportion to it. Sum is preserved when sum(targets) >= sum(used)."""
    out = dict(targets)
    deficit = sum((used[n] - t for n, t in out.items() if used.get(n, ZERO) > t), ZERO)
    if deficit <= 0:
        return out
    for n in out:
        out[n] = max(out[n], used.get(n, ZERO))
    spare = {n: out[n] - used.get(n, ZERO) for n in out if out[n] > used.get(n, ZERO)}
    room = sum(spare.values(), ZERO)
    if room <= deficit:  # not enough value to cover the capital in use: every pocket is fully used
        return {n: used.get(n, ZERO) for n in out}
    names = sorted(spare)
    taken = ZERO
    for i, n in enumerate(names):
        cut = deficit - taken if i == len(names) - 1 else q(deficit * spare[n] / room)
        cut = min(cut, spare[n])
        out[n] -= cut
        taken += cut
    return out


class PocketLedger:
    """The capital pockets and their reservations. Construct once per process; safe across processes."""

    def __init__(self, db: Database, clock: Clock, config: dict[str, Decimal]) -> None:
        self.db, self.clock = db, clock
        self.config = validate_allocation(config)
        # this ledger's view of the pockets (see pockets(max_age_s=)): read from the store, then kept current
        # with this ledger's own committed writes
        self._view: dict[str, Pocket] | None = None
        self._view_at = 0  # the platform clock's now_ms() at the read (market time in a backtest)

    # ---- set-up and allocation ------------------------------------------------------------------
    async def ensure_initialised(self, total_value: Decimal) -> None:
        """Create the pockets of the configuration that do not exist yet, then spread `total_value` when
        nothing existed before. Existing pockets (and their used capital) are never reset."""
        now = self.clock.now_ms()
        self._view = None
        async with self.db.begin() as conn:
            existing = {r.pocket_type for r in (await conn.execute(select(capital_pockets.c.pocket_type))).all()}
            missing = [n for n in self.config if n not in existing]
            if not missing:
                return
            fresh = not existing
            targets = split_total(q(total_value), self.config) if fresh else dict.fromkeys(missing, ZERO)
            rows = [
                {
                    "pocket_type": n,
                    "allocation_percent": self.config[n],
                    "current_value": targets[n],
                    "used_value": ZERO,
                    "available_value": targets[n],
                    "updated_at": now,
                }
                for n in missing
            ]
            await conn.execute(self.db.upsert(capital_pockets, rows, ["pocket_type"], update=[]))
        log.info("pockets initialised", created=missing, total_value=str(total_value) if fresh else None)

    async def set_allocation(self, config: dict[str, Decimal]) -> None:
        """Change the percentages (validated), then re-spread the pockets' current total over them.
        Pockets left out get 0 % and are removed once they hold no used capital."""
        new = validate_allocation(config)
        self.config = new
        self._view = None
        now = self.clock.now_ms()
        async with self.db.begin() as conn:
            await conn.execute(update(capital_pockets).values(updated_at=now))  # write first: lock
            rows = (await conn.execute(select(capital_pockets))).mappings().all()
            have = {r["pocket_type"] for r in rows}
            for r in rows:
                await conn.execute(
                    update(capital_pockets)
                    .where(capital_pockets.c.pocket_type == r["pocket_type"])
                    .values(allocation_percent=new.get(r["pocket_type"], ZERO))
                )
            fresh = [
                {
                    "pocket_type": n,
                    "allocation_percent": p,
                    "current_value": ZERO,
                    "used_value": ZERO,
                    "available_value": ZERO,
                    "updated_at": now,
                }
                for n, p in new.items()
                if n not in have
            ]
            if fresh:
                await conn.execute(capital_pockets.insert().values(fresh))
            total = sum((r["current_value"] for r in rows), ZERO)
            await self._reallocate(conn, total, now)
        log.info("pocket allocation changed", allocation={k: str(v) for k, v in new.items()})

    async def reallocate(self, total_value: Decimal) -> None:
        """Spread `total_value` over the pockets by percentage, keeping the capital in use.

        A pocket whose share is below its used capital keeps `current = used` and the difference is taken
        from the others. If `total_value` is below the capital in use altogether (positions marked down),
        every pocket is left fully used (`current = used`, nothing available) and a warning is logged.
        """
        self._view = None
        async with self.db.begin() as conn:
            await conn.execute(update(capital_pockets).values(updated_at=self.clock.now_ms()))  # write first
            await self._reallocate(conn, q(total_value), self.clock.now_ms())

    async def _reallocate(self, conn: AsyncConnection, total: Decimal, now: int) -> None:
        rows = (await conn.execute(select(capital_pockets))).mappings().all()
        if not rows:
            return
        percents = {r["pocket_type"]: r["allocation_percent"] for r in rows}
        used = {r["pocket_type"]: r["used_value"] for r in rows}
        if sum(percents.values(), ZERO) != HUNDRED:  # stale rows only: spread over the configuration
            percents = {n: self.config.get(n, ZERO) for n in percents}
        if sum(used.values(), ZERO) > total:
            log.warning(
                "portfolio value below the capital in use; pockets left fully used",
                total_value=str(total),
                used=str(sum(used.values(), ZERO)),
            )
        targets = fit_to_used(split_total(total, percents), used)
        for n, cur in targets.items():
            values = {"current_value": cur, "available_value": cur - used[n], "updated_at": now}
            await conn.execute(update(capital_pockets).where(capital_pockets.c.pocket_type == n).values(**values))
        gone = [n for n in percents if percents[n] == 0 and used[n] == 0 and n not in self.config]
        if gone:
            await conn.execute(delete(capital_pockets).where(capital_pockets.c.pocket_type.in_(gone)))

    # ---- reservations -----------------------------------------------------------------------------
    async def reserve(
        self,
        reservation_id: str,
        amount: Decimal,
        *,
        pocket: str = "active",
        cycle_id: str | None = None,
        reason: str = "",
        also: Callable[[Connection], None] | None = None,
    ) -> Reservation:
        """Set `amount` aside in `pocket`. Idempotent on `reservation_id`: a second call returns the
        existing reservation (whatever its status) and moves no money. Raises InsufficientFunds.

        `also(conn)`, when given, runs inside the same transaction once the reservation is made or found (the
        coordinator records its decision there: one commit, decision and funds together or neither); it does
        not run when the reservation is refused."""
        amount = q(amount)
        if amount <= 0:
            raise ValueError(f"reservation amount must be positive, got {amount}")
        now = self.clock.now_ms()
        row: dict[str, Any] = {
            "id": reservation_id,
            "pocket_type": pocket,
            "cycle_id": cycle_id,
            "amount": amount,
            "status": RESERVED,
            "reason": reason[:200],
            "created_at": now,
            "updated_at": now,
        }
        insert = upsert_stmt(self.db, pocket_reservations, ["id"], update=[])
        touched: list[tuple[str, dict[str, object]]] = []

        def txn(conn: Connection) -> Reservation | None:
            # The insert is the first write: it serialises callers that share an id (PK conflict).
            if not conn.execute(insert, row).rowcount:
                got = (
                    conn.execute(select(pocket_reservations).where(pocket_reservations.c.id == reservation_id))
                    .mappings()
                    .one()
                )
                if also is not None:
                    also(conn)
                return _reservation(got)
            p = _lock_pocket(conn, pocket)
            if p is None:
                raise ValueError(f"unknown pocket {pocket!r}; pockets are {sorted(self.config)}")
            if p["available_value"] < amount:
                raise InsufficientFunds(pocket, amount, p["available_value"])  # rolls the row back
            touched.append(
                _set_pocket(conn, pocket, now, used=p["used_value"] + amount, available=p["available_value"] - amount)
            )
            if also is not None:
                also(conn)
            return None

        existing = await run_txn(self.db, txn)
        self._note(touched)
        if existing is not None:
            return existing
        log.debug("funds reserved", reservation=reservation_id, pocket=pocket, amount=str(amount), cycle=cycle_id)
        return Reservation(**row)

    async def consume(self, reservation_id: str, amount: Decimal | None = None) -> None:
        """The reserved funds are now in a position: they stay used until `release`. With `amount` below
        the reservation (a smaller fill), the rest returns to the pocket at once; an amount above it is
        capped at the reservation (the ledger never takes unreserved funds silently) and logged.
        A repeated consume, or one after release, is a no-op."""
        now = self.clock.now_ms()
        touched: list[tuple[str, dict[str, object]]] = []

        def txn(conn: Connection) -> str | None:
            res = conn.execute(
                update(pocket_reservations)
                .where(pocket_reservations.c.id == reservation_id, pocket_reservations.c.status == RESERVED)
                .values(status=CONSUMED, updated_at=now)
            )
            if not res.rowcount:
                return "not reserved"
            r = (
                conn.execute(select(pocket_reservations).where(pocket_reservations.c.id == reservation_id))
                .mappings()
                .one()
            )
            if amount is None:
                return None
            used = q(amount)
            if used > r["amount"]:
                return f"capped: requested {used}, reserved {r['amount']}"
            back = r["amount"] - max(used, ZERO)
            if back > 0:
                conn.execute(
                    update(pocket_reservations)
                    .where(pocket_reservations.c.id == reservation_id)
                    .values(amount=r["amount"] - back)
                )
                p = _lock_pocket(conn, r["pocket_type"])
                if p is not None:
                    touched.append(
                        _set_pocket(
                            conn,
                            r["pocket_type"],
                            now,
                            used=p["used_value"] - back,
                            available=p["available_value"] + back,
                        )
                    )
            return None

        note = await run_txn(self.db, txn)
        self._note(touched)
        if note == "not reserved":
            log.info("consume ignored: reservation not in reserved state", reservation=reservation_id)
        elif note is not None:
            log.warning("consume above reservation capped", reservation=reservation_id, detail=note)

    async def release(
        self, reservation_id: str, reason: str, *, pnl: Decimal = ZERO, only_if_idle_since: int | None = None
    ) -> bool:
        """Return a reservation's funds to its pocket, plus the realised `pnl` (which changes the pocket's
        current value). A loss is capped at the amount reserved: a spot position cannot give back less
        than nothing. Idempotent: a second release (or an unknown id) is a no-op. True when this call released.

        `only_if_idle_since` (epoch ms): release only a reservation still `reserved` and untouched since then
        (the stale-reservation case). The trader claims a reservation by touching it in the transaction that
        stores its cycle, so a claim and this release never both win (checked under the row lock)."""
        now = self.clock.now_ms()
        touched: list[tuple[str, dict[str, object]]] = []
        cond = [pocket_reservations.c.id == reservation_id, pocket_reservations.c.status.in_([RESERVED, CONSUMED])]
        if only_if_idle_since is not None:
            cond += [pocket_reservations.c.status == RESERVED, pocket_reservations.c.updated_at <= only_if_idle_since]

        def txn(conn: Connection) -> tuple[Decimal, Decimal, bool] | None:
            res = conn.execute(
                update(pocket_reservations).where(*cond).values(status=RELEASED, updated_at=now, reason=reason[:200])
            )
            if not res.rowcount:
                return None
            r = (
                conn.execute(select(pocket_reservations).where(pocket_reservations.c.id == reservation_id))
                .mappings()
                .one()
            )
            amount, gain = r["amount"], q(pnl)
            capped = gain < -amount
            if capped:
                gain = -amount
            p = _lock_pocket(conn, r["pocket_type"])
            if p is not None:
                touched.append(
                    _set_pocket(
                        conn,
                        r["pocket_type"],
                        now,
                        used=p["used_value"] - amount,
                        available=p["available_value"] + amount + gain,
                        current=p["current_value"] + gain,
                    )
                )
            return amount, gain, capped

        done = await run_txn(self.db, txn)
        self._note(touched)
        if done is None:
            log.info("release ignored: unknown, already released or claimed", reservation=reservation_id)
            return False
        amount, gain, capped = done
        if capped:
            log.warning(
                "loss larger than the reservation capped", reservation=reservation_id, pnl=str(pnl), amount=str(amount)
            )
        log.debug("funds released", reservation=reservation_id, amount=str(amount), pnl=str(gain), reason=reason)
        return True

    # ---- reads --------------------------------------------------------------------------------------
    async def pockets(self, *, max_age_s: float = 0.0) -> list[Pocket]:
        """The pockets, largest allocation first. With `max_age_s` > 0 the answer may come from this ledger's
        view: read from the store at most `max_age_s` ago and kept current with this ledger's own committed
        writes (another writer's changes, e.g. the portfolio's reallocation, show up once the view is older).

        Why: the coordinator sizes every entry from the pockets, and a read costs a database round trip on the
        order path (~0.2 ms alone, ~1 ms while the trader writes). A view that is slightly stale only ever
        affects sizing: the reservation itself checks the funds inside its transaction."""
        if max_age_s > 0 and self._view is not None and self.clock.now_ms() - self._view_at < max_age_s * 1000:
            return list(self._view.values())
        rows = await run_txn(self.db, lambda conn: conn.execute(select(capital_pockets)).mappings().all(), read=True)
        rows = sorted(rows, key=lambda r: (-r["allocation_percent"], r["pocket_type"]))
        listed = [
            Pocket(
                pocket_type=r["pocket_type"],
                allocation_percent=r["allocation_percent"],
                current_value=r["current_value"],
                used_value=r["used_value"],
                available_value=r["available_value"],
            )
            for r in rows
        ]
        self._view, self._view_at = {p.pocket_type: p for p in listed}, self.clock.now_ms()
        return listed

    def _note(self, touched: list[tuple[str, dict[str, object]]]) -> None:
        """Apply a committed transaction's pocket writes to the view (the values it wrote, read under lock)."""
        if self._view is None:
            return
        for pocket, values in touched:
            p = self._view.get(pocket)
            if p is None:
                self._view = None  # a pocket we have not seen: read again next time
                return
            self._view[pocket] = msgspec.structs.replace(p, **{k: v for k, v in values.items() if k != "updated_at"})

    async def get(self, reservation_id: str) -> Reservation | None:
        async with self.db.connect() as conn:
            r = (
                (await conn.execute(select(pocket_reservations).where(pocket_reservations.c.id == reservation_id)))
                .mappings()
                .first()
            )
        return _reservation(r) if r else None

    async def reservations(
        self, *, status: list[str] | None = None, cycle_id: str | None = None, limit: int = 10_000
    ) -> list[Reservation]:
        stmt = select(pocket_reservations)
        if status:
            stmt = stmt.where(pocket_reservations.c.status.in_(status))
        if cycle_id is not None:  # a cycle's entry and its position adjustments
            stmt = stmt.where(pocket_reservations.c.cycle_id == cycle_id)
        stmt = stmt.order_by(pocket_reservations.c.created_at.desc()).limit(limit)
        async with self.db.connect() as conn:
            return [_reservation(r) for r in (await conn.execute(stmt)).mappings().all()]


def _lock_pocket(conn: Connection, pocket: str) -> dict[str, Decimal] | None:
    """Read a pocket for update. Arithmetic happens here in Python, never in SQL: SQLite stores Money
    as text, where `+` would go through floats and `>=` would compare strings."""
    row = (
        conn.execute(select(capital_pockets).where(capital_pockets.c.pocket_type == pocket).with_for_update())
        .mappings()
        .first()
    )
    return dict(row) if row else None


def _set_pocket(
    conn: Connection, pocket: str, now: int, *, used: Decimal, available: Decimal, current: Decimal | None = None
) -> tuple[str, dict[str, object]]:
    """Write a pocket's values; returns (pocket, values) for the ledger's view once the transaction commits."""
    values: dict[str, object] = {"used_value": used, "available_value": available, "updated_at": now}
    if current is not None:
        values["current_value"] = current
    conn.execute(update(capital_pockets).where(capital_pockets.c.pocket_type == pocket).values(**values))
    return pocket, values


def _reservation(r: object) -> Reservation:
    m = dict(r)  # type: ignore[call-overload]
    return Reservation(
        id=m["id"],
        pocket_type=m["pocket_type"],
        amount=m["amount"],
        status=m["status"],
        cycle_id=m["cycle_id"],
        reason=m["reason"] or "",
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )
