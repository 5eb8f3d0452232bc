"""Trader HTTP routes: token guard, manual orders validated against the real filters, cancel/close codes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from roottrading.clock import SimClock
from roottrading.runtime import Wiring
from roottrading.runtime.http import build_app
from tests.trader.conftest import MIN, SYM, T0, Rig, new_engine

AUTH = {"Authorization": "Bearer t"}


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """The trader with the risk manager and the coordinator: manual entries pass their money rules."""
    r = Rig(
        tmp_path,
        new_engine(),
        SimClock(T0 - MIN),
        services=["risk", "coordinator", "trader"],
        tuning={"risk_reload_s": 3600},
        wiring=Wiring(coordinator={"cooldown_s": 0}),
    )
    await r.start()
    r.core.last_price[SYM] = Decimal("20000")
    try:
        yield r
    finally:
        await r.stop()


@pytest.fixture
async def client(rig: Rig) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(rig.host)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


async def test_mutating_routes_need_the_token(client: httpx.AsyncClient, rig: Rig) -> None:
    body = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}
    assert (await client.post("/api/trader/order", json=body)).status_code == 401
    assert (await client.delete("/api/trader/order/x")).status_code == 401
    assert (await client.post("/api/trader/close/x")).status_code == 401
    assert (await client.post("/api/trader/config/pause", headers={"Authorization": "Bearer no"})).status_code == 401
    assert rig.engine.all_orders("BTCUSDT") == [] and not rig.core.paused


async def test_manual_buy_then_sell_and_cycle_detail(client: httpx.AsyncClient, rig: Rig) -> None:
    r = await client.post(
        "/api/trader/order",
        headers=AUTH,
        json={"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"},
    )
    assert r.status_code == 200, r.text
    order = r.json()
    assert order["status"] == "FILLED" and order["side"] == "BUY"
    cycles = (await client.get("/api/trader/cycles", params={"strategy": "manual"})).json()
    assert cycles["total"] == 1 and cycles["items"][0]["status"] == "ACTIVE"
    r = await client.post(
        "/api/trader/order",
        headers=AUTH,
        json={"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.005"},
    )
    assert r.status_code == 200, r.text
    assert Decimal(r.json()["quantity"]) == Decimal("0.005")
    detail = (await client.get(f"/api/trader/cycles/{order['cycle_id']}")).json()
    assert detail["status"] == "ACTIVE"  # reduced, not closed
    assert len(detail["orders"]) == 2 and len(detail["fills"]) == 2
    r = await client.post(f"/api/trader/close/{order['cycle_id']}", headers=AUTH)
    assert r.status_code == 200 and r.json()["status"] == "COMPLETED"
    assert (await client.post(f"/api/trader/close/{order['cycle_id']}", headers=AUTH)).status_code == 409
    assert (await client.post("/api/trader/close/nope", headers=AUTH)).status_code == 404
    trades = (await client.get("/api/trader/trades")).json()
    assert len(trades) == 3
    r = await client.post(
        "/api/trader/order",
        headers=AUTH,
        json={"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.001"},
    )
    assert r.status_code == 409 and "no open" in r.json()["detail"]


@pytest.mark.parametrize(
    "body,needle",
    [
        ({"symbol": "DOGEUSDT", "side": "BUY", "quantity": "1"}, "unknown symbol DOGEUSDT"),
        ({"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.000001"}, "not a multiple of the step size 0.00001000"),
        ({"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.0001"}, "fails MIN_NOTIONAL: at least 10"),
        ({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01"}, "needs a price"),
        (
            {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "19000.005"},
            "tick size 0.01000000 (nearest valid: 19000)",
        ),
        (
            {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "1000"},
            "too far from the market",
        ),
        ({"symbol": "BTCUSDT", "side": "BUY"}, "exactly one of quantity or quote_quantity"),
    ],
)
async def test_manual_order_validation_is_a_clear_422(
    client: httpx.AsyncClient, rig: Rig, body: dict, needle: str
) -> None:
    r = await client.post("/api/trader/order", headers=AUTH, json=body)
    assert r.status_code == 422 and needle in r.text, r.text
    assert rig.engine.all_orders("BTCUSDT") == []


async def test_cancel_route_codes_and_symbols_and_health(client: httpx.AsyncClient, rig: Rig) -> None:
    r = await client.post(
        "/api/trader/order",
        headers=AUTH,
        json={
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "quantity": "0.01",
            "price": "19000",
            "request_id": "k1",
        },
    )
    oid = r.json()["client_order_id"]
    again = await client.post(
        "/api/trader/order",
        headers=AUTH,
        json={
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "quantity": "0.01",
            "price": "19000",
            "request_id": "k1",
        },
    )
    assert again.json()["client_order_id"] == oid and len(rig.engine.all_orders("BTCUSDT")) == 1
    assert (await client.delete("/api/trader/order/unknown", headers=AUTH)).status_code == 404
    r = await client.delete(f"/api/trader/order/{oid}", headers=AUTH)
    assert r.status_code == 200 and r.json()["status"] == "CANCELED"
    assert (await client.delete(f"/api/trader/order/{oid}", headers=AUTH)).status_code == 409
    syms = (await client.get("/api/trader/symbols")).json()
    assert syms[0]["symbol"] == "BTCUSDT" and syms[0]["tick_size"] == "0.01000000"
    assert (await client.post("/api/trader/config/pause", headers=AUTH)).json() == {"paused": True}
    h = (await client.get("/api/trader/health")).json()
    assert h["paused"] is True and h["exchange"] == "SimExchange"
    orders = (await client.get("/api/trader/orders", params={"status": "CANCELED"})).json()
    assert [o["client_order_id"] for o in orders] == [oid]
