from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from roottrading.domain import (
    Candle,
    CycleStatus,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Side,
    Signal,
    SignalStrength,
    TradeCycle,
)
from roottrading.store import (
    CandleRepo,
    CycleRepo,
    Database,
    DecisionRepo,
    EventLogRepo,
    OrderRepo,
    Processed,
    SignalRepo,
)


def candle(t: int, close: float = 100.0, symbol: str = "BTCUSDT") -> Candle:
    return Candle(
        symbol=symbol,
        interval="1m",
        open_time=t * 60_000,
        close_time=t * 60_000 + 59_999,
        open=close - 1,
        high=close + 2,
        low=close - 3,
        close=close,
        volume=1.5,
        trades=3,
    )


async def test_migrate_is_idempotent_and_creates_reference_tables(db: Database) -> None:
    await db.migrate()
    async with db.connect() as conn:
        for table in (
            "trade_executions",
            "trade_cycles",
            "market_data",
            "portfolio_balances",
            "capital_pockets",
            "performance_stats",
            "trading_signals",
            "event_logs",
        ):
            assert (await conn.execute(text(f"SELECT COUNT(*) FROM {table}"))).scalar() == 0


async def test_candles_upsert_by_natural_key(db: Database) -> None:
    repo = CandleRepo(db)
    assert await repo.upsert([candle(i) for i in range(10)]) == 10
    # replay with one corrected value: no duplicate, the value is replaced
    await repo.upsert([candle(3, close=555.5), candle(4)])
    assert await repo.count("BTCUSDT", "1m") == 10
    got = await repo.range("BTCUSDT", "1m", start=3 * 60_000, end=4 * 60_000)
    assert [c.close for c in got] == [555.5, 100.0]
    assert await repo.last_open_time("BTCUSDT", "1m") == 9 * 60_000
    latest = await repo.range("BTCUSDT", "1m", limit=3)
    assert [c.open_time // 60_000 for c in latest] == [7, 8, 9]


async def test_in_progress_candles_are_not_stored(db: Database) -> None:
    repo = CandleRepo(db)
    c = candle(1)
    open_bar = Candle(**{**{f: getattr(c, f) for f in Candle.__struct_fields__}, "closed": False})
    assert await repo.upsert([open_bar]) == 0
    assert await repo.count("BTCUSDT", "1m") == 0


async def test_signal_stored_once(db: Database) -> None:
    repo = SignalRepo(db)
    s = Signal(
        id="ema:BTCUSDT:1m:60000",
        time=60_000,
        symbol="BTCUSDT",
        strategy="ema",
        side=Side.BUY,
        strength=SignalStrength.STRONG,
        price=101.5,
        meta={"fast": 9},
    )
    assert await repo.add(s) is True
    assert await repo.add(s) is False
    got = await repo.query(symbol="BTCUSDT")
    assert got == [s]


async def test_signals_of_one_candle_stored_together_each_once(db: Database) -> None:
    repo = SignalRepo(db)
    sigs = [
        Signal(
            id=f"{name}:BTCUSDT:1m:60000",
            time=60_000,
            symbol="BTCUSDT",
            strategy=name,
            side=Side.BUY,
            strength=SignalStrength.STRONG,
            price=101.5,
            meta={"n": i},
        )
        for i, name in enumerate(("ema", "rsi", "macd"))
    ]
    await repo.add_many([])
    await repo.add_many(sigs[:2])
    await repo.add_many(sigs)  # a redelivered candle: the first two are already there, the third is new
    got = await repo.query(symbol="BTCUSDT")
    assert sorted(got, key=lambda s: s.id) == sorted(sigs, key=lambda s: s.id)
    assert await repo.add(sigs[2]) is False


async def test_order_decimal_values_round_trip_exactly(db: Database) -> None:
    repo = OrderRepo(db)
    o = Order(
        client_order_id="rt-1",
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=Decimal("0.00012345"),
        price=Decimal("43210.12345678"),
        created_at=1,
        updated_at=1,
    )
    await repo.save(o)
    o.status, o.executed_quantity, o.cumulative_quote = OrderStatus.FILLED, Decimal("0.00012345"), Decimal("5.33")
    await repo.save(o)
    got = await repo.get("rt-1")
    assert got is not None
    assert got.price == Decimal("43210.12345678") and got.quantity == Decimal("0.00012345")
    assert got.status is OrderStatus.FILLED and got.cumulative_quote == Decimal("5.33")
    assert await repo.open_orders() == []


async def test_fill_recorded_once(db: Database) -> None:
    repo = OrderRepo(db)
    f = Fill(
        trade_id="t1",
        order_id="9",
        client_order_id="rt-1",
        symbol="BTCUSDT",
        side=Side.BUY,
        price=Decimal("100.1"),
        quantity=Decimal("0.5"),
        quote_quantity=Decimal("50.05"),
        commission=Decimal("0.0005"),
        commission_asset="BTC",
        time=5,
    )
    assert await repo.add_fill(f) is True
    assert await repo.add_fill(f) is False
    rows = await repo.fills(order_id="rt-1")
    assert len(rows) == 1 and rows[0]["price"] == Decimal("100.1")


async def test_cycles_filter_and_paginate(db: Database) -> None:
    repo = CycleRepo(db)
    for i in range(7):
        await repo.save(
            TradeCycle(
                id=f"c{i}",
                symbol="BTCUSDT" if i % 2 else "ETHUSDT",
                strategy="ema",
                side=Side.BUY,
                status=CycleStatus.ACTIVE if i < 3 else CycleStatus.COMPLETED,
                created_at=i,
                updated_at=i,
                quantity=Decimal("1"),
                profit_loss=Decimal("-1.5") if i == 4 else None,
            )
        )
    page, total = await repo.query(status=["COMPLETED"], limit=2, offset=1)
    assert total == 4 and [c.id for c in page] == ["c5", "c4"]
    assert page[1].profit_loss == Decimal("-1.5")
    assert {c.id for c in await repo.open_cycles()} == {"c0", "c1", "c2"}


async def test_event_logs_query_and_dedupe(db: Database) -> None:
    repo = EventLogRepo(db)
    rows = [
        {
            "message_id": f"m{i}",
            "time": i,
            "level": "error" if i % 3 == 0 else "info",
            "service": "trader" if i % 2 else "gateway",
            "event": f"order {i} placed 100%",
            "context": {"i": i},
        }
        for i in range(10)
    ]
    assert await repo.add_many(rows) == 10
    await repo.add_many(rows[:3])  # redelivered by the bus
    assert len(await repo.query(limit=100)) == 10
    errs = await repo.query(level="error")
    assert [r["time"] for r in errs] == [9, 6, 3, 0]
    assert [r["time"] for r in await repo.query(service="trader", since=5)] == [9, 7, 5]
    assert [r["time"] for r in await repo.query(q="order 7")] == [7]
    assert len(await repo.query(q="100%")) == 10  # LIKE wildcards in the query are literal


async def test_decisions_are_queryable_by_signal(db: Database) -> None:
    repo = DecisionRepo(db)
    await repo.add(
        signal_id="s1",
        time=1,
        symbol="BTCUSDT",
        strategy="ema",
        decision="rejected",
        reason="strength WEAK below MODERATE",
        details={"min": "MODERATE"},
    )
    await repo.add(signal_id="s2", time=2, symbol="BTCUSDT", strategy="ema", decision="accepted", reason="ok")
    got = await repo.query(signal_id="s1")
    assert len(got) == 1 and got[0]["reason"].startswith("strength") and got[0]["details"] == {"min": "MODERATE"}


async def test_processed_claim_is_exactly_once_within_transaction(db: Database) -> None:
    p = Processed(db, "pnl")
    async with db.begin() as conn:
        assert await p.claim(conn, "msg-1", 1) is True
    async with db.begin() as conn:
        assert await p.claim(conn, "msg-1", 2) is False
    # a failed transaction leaves no claim behind, so the redelivery is processed
    with pytest.raises(RuntimeError):
        async with db.begin() as conn:
            assert await p.claim(conn, "msg-2", 3) is True
            raise RuntimeError("effect failed")
    async with db.begin() as conn:
        assert await p.claim(conn, "msg-2", 4) is True


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("1e12"), places=8, allow_nan=False))
async def test_money_round_trip_property(db: Database, value: Decimal) -> None:
    repo = OrderRepo(db)
    o = Order(
        client_order_id="p",
        symbol="BTCUSDT",
        side=Side.SELL,
        type=OrderType.MARKET,
        quantity=value,
        created_at=0,
        updated_at=0,
    )
    await repo.save(o)
    got = await repo.get("p")
    assert got is not None and got.quantity == value


async def test_same_trade_id_on_two_symbols_are_two_fills(db: Database) -> None:
    """Binance trade ids are unique per symbol: trade 7 on BTCUSDT and trade 7 on ETHUSDT are both real."""
    repo = OrderRepo(db)
    for sym in ("BTCUSDT", "ETHUSDT"):
        f = Fill(
            trade_id="7",
            order_id="1",
            client_order_id=f"rt-{sym}",
            symbol=sym,
            side=Side.BUY,
            price=Decimal("1"),
            quantity=Decimal("1"),
            quote_quantity=Decimal("1"),
            commission=Decimal("0"),
            commission_asset="USDT",
            time=1,
        )
        assert await repo.add_fill(f) is True
    assert len(await repo.fills(limit=10)) == 2


async def test_migrations_produce_exactly_the_declared_tables(db: Database) -> None:
    """A table changed in tables.py without a migration (or the reverse) fails here, on both databases."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from roottrading.store.tables import metadata

    def diff(sync_conn):  # type: ignore[no-untyped-def]
        ctx = MigrationContext.configure(sync_conn, opts={"compare_type": False})
        return [
            d
            for d in compare_metadata(ctx, metadata)
            if not (isinstance(d, tuple) and d[0] == "remove_table" and d[1].name == "alembic_version")
        ]

    async with db.connect() as conn:
        changes = await conn.run_sync(diff)
    assert changes == []


async def test_safety_state_documents_are_replaced_whole(db: Database) -> None:
    from roottrading.store import SafetyStateRepo

    repo = SafetyStateRepo(db)
    assert await repo.get("risk") is None
    await repo.put("risk", {"locks": [{"rule": "kill_switch"}], "equity_peak": "10500.5"}, 1)
    await repo.put("trader", {"paused": True}, 2)
    await repo.put("risk", {"locks": [], "equity_peak": "11000"}, 3)
    assert await repo.get("risk") == {"locks": [], "equity_peak": "11000"}
    assert await repo.get("trader") == {"paused": True}


async def test_a_signal_is_decided_once_whatever_writes_it(db: Database) -> None:
    """Issue 18: two coordinators (or a redelivery racing a restart) recording the same decision store one row;
    a different decision of the same signal (accepted, then failed to publish) is still recorded."""
    from roottrading.store import DecisionRepo
    from roottrading.store.repos_system import run_txn

    repo = DecisionRepo(db)
    row = {"signal_id": "sig-1", "time": 1, "symbol": "BTCUSDT", "strategy": "s", "decision": "accepted"}
    await repo.add(**row, reason="first")
    await repo.add(**row, reason="second instance")
    assert not await run_txn(db, lambda conn: DecisionRepo.add_in(conn, {**row, "reason": "in a txn"}))
    await repo.add(**{**row, "decision": "failed"}, reason="publish failed")
    got = await repo.query(signal_id="sig-1")
    assert sorted((d["decision"], d["reason"]) for d in got) == [("accepted", "first"), ("failed", "publish failed")]
