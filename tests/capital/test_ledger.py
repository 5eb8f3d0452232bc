"""PocketLedger on SQLite and PostgreSQL: examples, a property-based model check and a concurrency test."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from roottrading.capital.ledger import (
    InsufficientFunds,
    PocketLedger,
    fit_to_used,
    split_total,
    validate_allocation,
)
from roottrading.clock import SimClock
from roottrading.store import Database
from roottrading.store.tables import capital_pockets, pocket_reservations

D = Decimal
CONFIG = {"active": D(60), "buffer": D(30), "safety": D(10)}


async def fresh_ledger(db: Database, total: Decimal = Decimal(10_000)) -> PocketLedger:
    async with db.begin() as conn:
        await conn.execute(delete(pocket_reservations))
        await conn.execute(delete(capital_pockets))
    ledger = PocketLedger(db, SimClock(1_000), CONFIG)
    await ledger.ensure_initialised(total)
    return ledger


async def by_name(ledger: PocketLedger) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    return {p.pocket_type: (p.current_value, p.used_value, p.available_value) for p in await ledger.pockets()}


async def test_initialise_splits_by_percent_and_is_not_repeated(db: Database) -> None:
    ledger = await fresh_ledger(db)
    assert await by_name(ledger) == {
        "active": (D(6000), 0, D(6000)),
        "buffer": (D(3000), 0, D(3000)),
        "safety": (D(1000), 0, D(1000)),
    }
    await ledger.reserve("r1", D(100))
    await ledger.ensure_initialised(D(50))  # already there: nothing is reset
    assert (await by_name(ledger))["active"] == (D(6000), D(100), D(5900))


async def test_reserve_consume_release_moves_money_once(db: Database) -> None:
    ledger = await fresh_ledger(db)
    r = await ledger.reserve("r1", D("250.5"), cycle_id="c1", reason="signal s1")
    assert (r.status, r.amount, r.cycle_id) == ("reserved", D("250.5"), "c1")
    assert (await ledger.reserve("r1", D("999"))).amount == D("250.5")  # idempotent: same reservation
    assert (await by_name(ledger))["active"] == (D(6000), D("250.5"), D("5749.5"))
    await ledger.consume("r1", D("200.5"))  # filled for less: 50 back at once
    await ledger.consume("r1", D("1"))  # second consume: no-op
    assert (await by_name(ledger))["active"] == (D(6000), D("200.5"), D("5799.5"))
    await ledger.release("r1", "cycle completed", pnl=D("12.25"))
    await ledger.release("r1", "again", pnl=D("12.25"))  # no second payout
    assert (await by_name(ledger))["active"] == (D("6012.25"), D(0), D("6012.25"))
    assert (await ledger.get("r1")).status == "released"  # type: ignore[union-attr]
    await ledger.release("unknown", "nothing")  # unknown id: no-op, no error


async def test_insufficient_funds_names_pocket_and_amounts_and_stores_nothing(db: Database) -> None:
    ledger = await fresh_ledger(db)
    with pytest.raises(InsufficientFunds, match=r"pocket 'safety': requested 1000.5.*available 1000"):
        await ledger.reserve("big", D("1000.5"), pocket="safety")
    assert await ledger.get("big") is None
    with pytest.raises(ValueError, match="unknown pocket 'nope'"):
        await ledger.reserve("x", D(1), pocket="nope")
    with pytest.raises(ValueError, match="positive"):
        await ledger.reserve("y", D(0))


async def test_loss_is_capped_at_reservation_and_reallocate_keeps_used(db: Database) -> None:
    ledger = await fresh_ledger(db)
    await ledger.reserve("a", D(100))
    await ledger.reserve("b", D(5000))
    await ledger.consume("b")
    await ledger.release("a", "stopped out", pnl=D(-150))  # cannot lose more than the 100 set aside
    assert (await by_name(ledger))["active"] == (D(5900), D(5000), D(900))
    await ledger.reallocate(D(6000))  # active's share (3600) < used (5000): it keeps 5000
    got = await by_name(ledger)
    assert got["active"] == (D(5000), D(5000), D(0))
    assert sum(v[0] for v in got.values()) == D(6000)
    assert got["buffer"][0] + got["safety"][0] == D(1000)
    await ledger.reallocate(D(4000))  # below the capital in use: every pocket fully used
    got = await by_name(ledger)
    assert got["active"] == (D(5000), D(5000), D(0)) and got["buffer"] == (0, 0, 0)


async def test_set_allocation_validates_and_respreads(db: Database) -> None:
    ledger = await fresh_ledger(db)
    for bad, msg in (
        ({"active": D(70), "buffer": D(20)}, "sum to 100, got 90"),
        ({"active": D(110), "buffer": D(-10)}, "cannot be negative"),
        ({}, "empty"),
    ):
        with pytest.raises(ValueError, match=msg):
            await ledger.set_allocation(bad)
    await ledger.reserve("r", D(10), pocket="safety")
    await ledger.set_allocation({"active": D(80), "buffer": D(20)})
    got = await by_name(ledger)
    # safety (0 %) keeps its used 10 until released; the rest is spread 80/20 over what remains
    assert got["safety"] == (D(10), D(10), D(0))
    assert got["active"][0] + got["buffer"][0] == D(9990)
    await ledger.release("r", "done")
    await ledger.set_allocation({"active": D(80), "buffer": D(20)})
    assert set(await by_name(ledger)) == {"active", "buffer"}  # empty 0 % pocket removed
    assert (await by_name(ledger))["active"] == (D(8000), 0, D(8000))


def test_split_and_fit_are_exact() -> None:
    parts = split_total(D("100.00000000001"), {"a": D("33.3"), "b": D("33.3"), "c": D("33.4")})
    assert sum(parts.values()) == D("100.00000000001")
    fitted = fit_to_used({"a": D(10), "b": D(50), "c": D(40)}, {"a": D(30), "b": D(0), "c": D(0)})
    # a's deficit of 20 is taken from b and c in proportion to their spare room (50 : 40)
    assert fitted == {"a": D(30), "b": D("38.888888888889"), "c": D("31.111111111111")}
    assert validate_allocation({"x": "100"}) == {"x": D(100)}


# ---- property: random operation sequences keep every invariant ----------------------------------------
ids = st.sampled_from(["r0", "r1", "r2", "r3", "r4", "r5"])
money = st.decimals(min_value=D("0.01"), max_value=D(4000), places=2)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), ids, money, st.sampled_from(["active", "buffer", "safety"])),
        st.tuples(st.just("consume"), ids, st.one_of(st.none(), money)),
        st.tuples(st.just("release"), ids, st.decimals(min_value=D(-5000), max_value=D(500), places=2)),
        st.tuples(st.just("reallocate"), st.decimals(min_value=D(0), max_value=D(20_000), places=2)),
    ),
    min_size=1,
    max_size=14,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops)
async def test_random_sequences_keep_invariants(db: Database, sequence: list[tuple]) -> None:  # type: ignore[type-arg]
    ledger = await fresh_ledger(db)
    value = D(10_000)  # what the pockets must sum to
    for op in sequence:
        before = await by_name(ledger)
        if op[0] == "reserve":
            _, rid, amount, pocket = op
            known = await ledger.get(rid)
            try:
                await ledger.reserve(rid, amount, pocket=pocket)
                if known is None:
                    assert before[pocket][2] >= amount
            except InsufficientFunds as exc:
                assert known is None and before[pocket][2] < amount and exc.available == before[pocket][2]
            if known is not None:
                assert await by_name(ledger) == before  # existing id: no money moves
        elif op[0] == "consume":
            known = await ledger.get(op[1])
            await ledger.consume(op[1], op[2])
            if known is None or known.status != "reserved":
                assert await by_name(ledger) == before  # never spent twice
        elif op[0] == "release":
            known = await ledger.get(op[1])
            await ledger.release(op[1], "test", pnl=op[2])
            if known is None or known.status == "released":
                assert await by_name(ledger) == before
            else:
                value += max(op[2], -known.amount)
        else:
            await ledger.reallocate(op[1])
            used = sum(v[1] for v in before.values())
            value = op[1] if op[1] >= used else used
        after = await by_name(ledger)
        live = [r for r in await ledger.reservations() if r.status != "released"]
        for name, (cur, used_v, avail) in after.items():
            assert used_v + avail == cur, (name, after)
            assert cur >= 0 and used_v >= 0 and avail >= 0, (name, after)
            assert used_v == sum((r.amount for r in live if r.pocket_type == name), D(0))
        assert sum(v[0] for v in after.values()) == value


# ---- concurrency: many reserves at once never exceed what is available -------------------------------
async def test_concurrent_reserves_never_overspend(db: Database) -> None:
    ledger = await fresh_ledger(db)  # active: 6000

    async def one(i: int) -> bool:
        try:
            await ledger.reserve(f"c{i}", D(70), reason="race")
            return True
        except InsufficientFunds:
            return False

    results = await asyncio.gather(*(one(i) for i in range(120)))
    assert sum(results) == 85  # floor(6000 / 70)
    assert (await by_name(ledger))["active"] == (D(6000), D(5950), D(50))
    # the same id raced from many callers is reserved once
    await asyncio.gather(*(ledger.reserve("same", D(10), pocket="buffer") for _ in range(20)))
    assert (await by_name(ledger))["buffer"] == (D(3000), D(10), D(2990))
    # concurrent double releases pay out once
    await asyncio.gather(*(ledger.release("same", "race", pnl=D(5)) for _ in range(20)))
    assert (await by_name(ledger))["buffer"] == (D(3005), D(0), D(3005))


async def test_view_follows_own_writes_and_sees_other_writers_once_it_is_older_than_max_age(db: Database) -> None:
    ledger = await fresh_ledger(db)
    other = PocketLedger(db, SimClock(1_000), CONFIG)  # e.g. the portfolio service's ledger
    assert (await by_name(ledger))["active"] == (D(6000), 0, D(6000))
    view = {p.pocket_type: p for p in await ledger.pockets(max_age_s=60)}
    assert view["active"].available_value == D(6000)
    await ledger.reserve("r1", D(100))
    await ledger.consume("r1", D(90))
    await ledger.release("r1", "done", pnl=D(5))  # own writes: the view follows them exactly
    fresh = {p.pocket_type: p for p in await ledger.pockets()}
    assert {p.pocket_type: p for p in await ledger.pockets(max_age_s=60)} == fresh
    assert fresh["active"].current_value == D(6005)
    await other.reserve("r2", D(1000))  # another writer: not in this ledger's view yet ...
    assert (await by_name(ledger))["active"][1] == D(1000)  # (a plain read always sees the store)
    stale = {p.pocket_type: p for p in await ledger.pockets(max_age_s=60)}
    assert stale["active"].used_value == D(1000)  # ... the plain read above refreshed the view
    await other.release("r2", "gone")
    assert {p.pocket_type: p for p in await ledger.pockets(max_age_s=60)}["active"].used_value == D(1000)
    ledger.clock.advance(60_000)  # the view's age is platform (market) time: it expires when that moves
    assert {p.pocket_type: p for p in await ledger.pockets(max_age_s=60)}["active"].used_value == D(0)


async def test_view_age_is_market_time_not_wall_time(db: Database) -> None:
    """Issue 17 item 14: the sizing view expired on time.monotonic(), so a backtest's sizing depended on
    how fast the machine ran. On a simulated clock it now expires only when market time moves."""
    ledger = await fresh_ledger(db)
    other = PocketLedger(db, SimClock(1_000), CONFIG)
    await ledger.pockets()
    await other.reserve("r", D(500))
    await asyncio.sleep(0.05)  # wall time passes; market time does not
    assert {p.pocket_type: p for p in await ledger.pockets(max_age_s=0.01)}["active"].used_value == D(0)
    ledger.clock.advance(11)
    assert {p.pocket_type: p for p in await ledger.pockets(max_age_s=0.01)}["active"].used_value == D(500)
