"""Portfolio service through the Host and its HTTP API: balances, pockets, allocation, trades, performance,
reconciliation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from roottrading import messages as m
from roottrading.clock import SimClock
from roottrading.config import load_settings
from roottrading.domain import Balance, Candle, CycleStatus, Fill, Side, TradeCycle
from roottrading.runtime import Host
from roottrading.runtime.http import build_app
from roottrading.store import CycleRepo, Database, OrderRepo

D = Decimal
TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = 1_700_000_000_000


def candle(close: float, t: int = T0) -> Candle:
    return Candle(
        symbol="BTCUSDT",
        interval="1m",
        open_time=t - 60_000,
        close_time=t - 1,
        open=close,
        high=close,
        low=close,
        close=close,
        volume=1.0,
    )


def buy_fill(trade_id: str, price: str, qty: str, t: int = T0) -> Fill:
    p, q = D(price), D(qty)
    return Fill(
        trade_id=trade_id,
        order_id=trade_id,
        client_order_id=f"o-{trade_id}",
        symbol="BTCUSDT",
        side=Side.BUY,
        price=p,
        quantity=q,
        quote_quantity=p * q,
        commission=q * D("0.001"),
        commission_asset="BTC",
        time=t,
    )


@pytest.fixture(params=["sqlite", "postgres"])
async def env(
    request: pytest.FixtureRequest, tmp_path: Path, unique: str
) -> AsyncIterator[tuple[Host, httpx.AsyncClient, SimClock]]:
    settings = load_settings(
        symbols="BTCUSDT",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/p.db",
        api_token=TOKEN,
        data_dir=tmp_path,
        portfolio_reallocate_s=3600,
        portfolio_reconcile_s=3600,
    )
    db = None
    if request.param == "postgres":
        db = Database(request.getfixturevalue("postgres_url"), schema=f"p_{unique}")
    clock = SimClock(T0)
    host = Host(
        settings,
        ["portfolio"],
        clock=clock,
        db=db,
    )
    await host.start()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(host)), base_url="http://t") as c:
            yield host, c, clock
    finally:
        if db is not None:
            await db.drop_schema()
        await host.stop()


async def publish(host: Host, topic: str, payload: Any, msg_id: str | None = None) -> None:
    await host.bus.publish(topic, payload, msg_id=msg_id)
    assert await host.bus.drain(10)


async def test_demo_capital_pockets_and_fills(env: tuple[Host, httpx.AsyncClient, SimClock]) -> None:
    host, c, _ = env
    summary = (await c.get("/api/portfolio/summary")).json()
    assert summary["total_value"] == "10000" and summary["quote_asset"] == "USDT"
    pockets = {p["pocket_type"]: p for p in (await c.get("/api/portfolio/pockets")).json()}
    assert pockets["active"]["current_value"] == "6000" and pockets["safety"]["available_value"] == "1000"
    await publish(host, m.candles_topic("BTCUSDT"), candle(100.0))
    fill = buy_fill("f1", "100", "2")
    await publish(host, m.TRADE_EXECUTIONS, fill, msg_id="f1")
    await publish(host, m.TRADE_EXECUTIONS, fill, msg_id="f1")  # redelivery: applied once
    bal = {b["asset"]: b for b in (await c.get("/api/portfolio/balances")).json()}
    assert bal["USDT"]["free"] == "9800" and bal["BTC"]["total"] == "1.998"
    assert bal["BTC"]["value_quote"] == "199.8"
    await publish(host, m.candles_topic("BTCUSDT"), candle(150.0))
    assert (await c.get("/api/portfolio/summary")).json()["total_value"] == "10099.7"
    r = await c.put("/api/portfolio/pockets/sync", headers=AUTH)
    assert r.status_code == 200
    assert sum(D(p["current_value"]) for p in r.json()["pockets"]) == D("10099.7")


async def test_exchange_balances_are_authoritative(env: tuple[Host, httpx.AsyncClient, SimClock]) -> None:
    host, c, clock = env
    await publish(host, m.candles_topic("BTCUSDT"), candle(200.0))
    upd = m.BalancesUpdate(
        time=clock.now_ms(),
        balances=[Balance(asset="USDT", free=D(500), locked=D(100)), Balance(asset="BTC", free=D(1), locked=D(0))],
    )
    await publish(host, m.PORTFOLIO_BALANCES, upd)
    await publish(host, m.TRADE_EXECUTIONS, buy_fill("f2", "200", "1"), msg_id="f2")  # left to the next sync
    bal = {b["asset"]: b for b in (await c.get("/api/portfolio/balances")).json()}
    assert bal["USDT"] == {"asset": "USDT", "free": "500", "locked": "100", "total": "600", "value_quote": "600"}
    assert bal["BTC"]["value_quote"] == "200"


async def test_allocation_is_validated(env: tuple[Host, httpx.AsyncClient, SimClock]) -> None:
    _, c, _ = env
    assert (await c.put("/api/portfolio/pockets/allocation", json={"active": 50})).status_code == 401
    r = await c.put("/api/portfolio/pockets/allocation", json={"active": 70, "buffer": 20}, headers=AUTH)
    assert r.status_code == 422 and "sum to 100, got 90" in r.json()["detail"]
    r = await c.put("/api/portfolio/pockets/allocation", json={"active": 110, "safety": -10}, headers=AUTH)
    assert r.status_code == 422 and "negative" in r.json()["detail"]
    r = await c.put(
        "/api/portfolio/pockets/allocation", json={"allocation": {"active": 75, "buffer": 25}}, headers=AUTH
    )
    assert r.status_code == 200
    assert {p["pocket_type"]: p["current_value"] for p in r.json()} == {"active": "7500", "buffer": "2500"}


async def seed_cycles(host: Host) -> None:
    cycles, orders = CycleRepo(host.db), OrderRepo(host.db)
    for i, (entry, exit_, strat) in enumerate([("100", "110", "ema"), ("100", "95", "rsi"), ("100", "120", "ema")]):
        t = T0 - (3 - i) * 86_400_000
        cy = TradeCycle(
            id=f"c{i}",
            symbol="BTCUSDT",
            strategy=strat,
            side=Side.BUY,
            status=CycleStatus.COMPLETED,
            created_at=t,
            updated_at=t + 1000,
            entry_order_id=f"e{i}",
            exit_order_id=f"x{i}",
            entry_price=D(entry),
            exit_price=D(exit_),
            quantity=D(1),
            reservation_id=f"r{i}",
        )
        await cycles.save(cy)
        for oid, side, px in ((f"e{i}", Side.BUY, entry), (f"x{i}", Side.SELL, exit_)):
            await orders.add_fill(
                Fill(
                    trade_id=oid,
                    order_id=oid,
                    client_order_id=oid,
                    symbol="BTCUSDT",
                    side=side,
                    price=D(px),
                    quantity=D(1),
                    quote_quantity=D(px),
                    commission=D("0.1"),
                    commission_asset="USDT",
                    time=t + (0 if side is Side.BUY else 1000),
                )
            )


async def test_trades_and_performance(env: tuple[Host, httpx.AsyncClient, SimClock]) -> None:
    host, c, _ = env
    await seed_cycles(host)
    page = (await c.get("/api/portfolio/trades", params={"strategy": "ema", "limit": 1})).json()
    assert page["total"] == 2 and len(page["items"]) == 1 and page["items"][0]["id"] == "c2"
    assert [f["side"] for f in page["items"][0]["fills"]] == ["BUY", "SELL"]
    assert (await c.get("/api/portfolio/trades", params={"since": T0 - 86_400_000 * 2})).json()["total"] == 2
    perf = (await c.get("/api/portfolio/performance/all")).json()
    # pnl: 9.8, -5.2, 19.8 (0.1 fee per leg)
    assert perf["cycles"] == 3 and perf["realised_pnl"] == "24.4" and perf["win_rate"] == pytest.approx(2 / 3)
    assert perf["profit_factor"] == pytest.approx(29.6 / 5.2, rel=1e-5)
    curve = [p["equity"] for p in perf["equity_curve"]]
    assert curve[-1] == "10000" and D(curve[0]) == D("9975.6")  # balances unchanged: start = 10000 - 24.4
    day = (await c.get("/api/portfolio/performance/day")).json()
    assert day["cycles"] == 1 and day["realised_pnl"] == "19.8"  # rolling 24 h: only c2 closed in it
    assert (await c.get("/api/portfolio/performance/decade")).status_code == 404


async def test_reconciliation_releases_reservations_of_finished_cycles(
    env: tuple[Host, httpx.AsyncClient, SimClock],
) -> None:
    host, c, clock = env
    svc = host.services["portfolio"]
    ledger = svc.ledger  # type: ignore[attr-defined]
    await ledger.reserve("r0", D(100), reason="cycle c0")
    await ledger.reserve("orphan", D(50))
    await ledger.reserve("r-open", D(100))
    await CycleRepo(host.db).save(
        TradeCycle(
            id="open",
            symbol="BTCUSDT",
            strategy="ema",
            side=Side.BUY,
            status=CycleStatus.ACTIVE,
            created_at=T0,
            updated_at=T0,
            entry_price=D(100),
            quantity=D(1),
            reservation_id="r-open",
        )
    )
    await seed_cycles(host)  # c0 completed with reservation r0
    clock.advance(3_600_000)
    report = (await c.put("/api/portfolio/pockets/sync", headers=AUTH)).json()["reconciliation"]
    assert sorted(x["reservation"] for x in report["released"]) == ["orphan", "r0"]
    assert (await ledger.get("r0")).status == "released" and (await ledger.get("r-open")).status == "reserved"
    assert report["unfunded_cycles"] == [] and report["used_capital"] == "100"


async def test_reconciliation_counts_a_cycles_pnl_once_over_its_position_adjustments(
    env: tuple[Host, httpx.AsyncClient, SimClock],
) -> None:
    """A DCA cycle holds its entry's reservation and one per addition (tied by cycle id); if the coordinator
    missed its end, reconciliation releases them all and moves the pocket by the cycle's PnL once."""
    host, c, clock = env
    ledger = host.services["portfolio"].ledger  # type: ignore[attr-defined]
    await ledger.reserve("r-dca", D(100), cycle_id="dca")
    await ledger.reserve("r-dca-add", D(100), cycle_id="dca")
    before = {p.pocket_type: p for p in await ledger.pockets()}["active"].current_value
    await CycleRepo(host.db).save(
        TradeCycle(
            id="dca",
            symbol="BTCUSDT",
            strategy="dca",
            side=Side.BUY,
            status=CycleStatus.COMPLETED,
            created_at=T0,
            updated_at=T0,
            entry_price=D(100),
            quantity=D(2),
            reservation_id="r-dca",
            profit_loss=D(-30),
        )
    )
    clock.advance(3_600_000)
    report = (await c.put("/api/portfolio/pockets/sync", headers=AUTH)).json()["reconciliation"]
    assert sorted(x["reservation"] for x in report["released"]) == ["r-dca", "r-dca-add"]
    after = {p.pocket_type: p for p in await ledger.pockets()}["active"]
    assert after.current_value == before - 30 and after.used_value == 0
