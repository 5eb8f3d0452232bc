"""Manual entries (POST /api/trader/order, BUY) pass the same money rules as a signal's entry: the risk
manager's check and a pocket reservation, settled when the cycle closes. Manual exits stay direct."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from roottrading.clock import SimClock
from roottrading.runtime import Wiring
from roottrading.runtime.http import build_app
from tests.trader.conftest import MIN, SYM, T0, Rig, new_engine

D = Decimal
AUTH = {"Authorization": "Bearer t"}
# one order may be up to 70% of equity (7 000 of 10 000), more is refused; the active pocket holds 6 000
RULES = """version: 1
rules:
  max_exposure_per_asset: {enabled: true, limit_pct: 100, action: shrink}
  max_total_exposure: {enabled: true, limit_pct: 100, action: shrink}
  max_position_size: {enabled: true, limit_pct: 70, action: reject}
"""


@pytest.fixture
async def full(tmp_path: Path) -> AsyncIterator[Rig]:
    """Risk, coordinator and trader in one host (the one-process deployment)."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    r = Rig(
        tmp_path,
        new_engine(),
        SimClock(T0 - MIN),
        services=["risk", "coordinator", "trader"],
        tuning={"risk_reload_s": 3600, "risk_rules_path": rules},
        wiring=Wiring(coordinator={"cooldown_s": 0}),
    )
    await r.start()
    r.core.last_price[SYM] = D("20000")
    try:
        yield r
    finally:
        await r.stop()


@pytest.fixture
async def client(full: Rig) -> AsyncIterator[httpx.AsyncClient]:
    assert full.host is not None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(full.host)), base_url="http://t") as c:
        yield c


def coordinator(rig: Rig) -> Any:
    assert rig.host is not None
    return rig.host.services["coordinator"]


async def reserved(rig: Rig) -> list[Any]:
    """Reservations still holding funds (reserved or consumed, not released)."""
    return await coordinator(rig).ledger.reservations(status=["reserved", "consumed"])  # type: ignore[no-any-return]


async def active_available(rig: Rig) -> Decimal:
    pockets = {p.pocket_type: p for p in await coordinator(rig).ledger.pockets(max_age_s=0)}
    return pockets["active"].available_value  # type: ignore[no-any-return]


async def buy(client: httpx.AsyncClient, qty: str, **kw: str) -> httpx.Response:
    body = {"symbol": SYM, "side": "BUY", "type": "MARKET", "quantity": qty, **kw}
    return await client.post("/api/trader/order", headers=AUTH, json=body)


async def test_manual_buy_larger_than_the_pocket_is_refused_with_the_reason(
    client: httpx.AsyncClient, full: Rig
) -> None:
    r = await buy(client, "0.32")  # 6 400 quote: within the risk rules, more than the pocket's 6 000
    assert r.status_code == 422 and "insufficient funds" in r.text, r.text
    assert full.engine.all_orders(SYM) == []
    assert await reserved(full) == []


async def test_manual_buy_refused_by_the_risk_rules_is_refused(client: httpx.AsyncClient, full: Rig) -> None:
    r = await buy(client, "0.4")  # 8 000 quote > 70% of equity (max position size, action reject)
    assert r.status_code == 422 and "risk" in r.text, r.text
    assert full.engine.all_orders(SYM) == []
    assert await reserved(full) == []


async def test_accepted_manual_buy_reserves_funds_settled_when_its_cycle_closes(
    client: httpx.AsyncClient, full: Rig
) -> None:
    before = await active_available(full)
    r = await buy(client, "0.01", request_id="m1")
    assert r.status_code == 200, r.text
    order = r.json()
    assert order["status"] == "FILLED"
    cycle = await full.cycle(order["cycle_id"])
    assert cycle.reservation_id and cycle.strategy == "manual"
    assert full.host is not None and await full.host.bus.drain(5)  # the coordinator settles from cycle updates
    (res,) = await reserved(full)
    assert res.id == cycle.reservation_id
    assert await active_available(full) < before
    again = await buy(client, "0.01", request_id="m1")  # same request id: same order, no second reservation
    assert again.json()["client_order_id"] == order["client_order_id"]
    assert len(await coordinator(full).ledger.reservations()) == 1  # in any status
    closed = await client.post(f"/api/trader/close/{order['cycle_id']}", headers=AUTH)  # a manual exit: direct
    assert closed.status_code == 200 and closed.json()["status"] == "COMPLETED"
    assert await full.host.bus.drain(5)
    assert await reserved(full) == []  # released with the cycle's PnL
    pnl = (await full.cycle(order["cycle_id"])).profit_loss
    assert await active_available(full) == before + pnl


async def test_manual_entry_is_refused_when_the_coordinator_cannot_be_reached(rig: Rig) -> None:
    """The trader alone (coordinator in another process, down): the entry is not sent unfunded."""
    rig.svc.manual.url = "http://127.0.0.1:9"  # nothing listens there
    assert rig.host is not None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(rig.host)), base_url="http://t") as c:
        r = await buy(c, "0.01")
    assert r.status_code == 503 and "not sent" in r.text
    assert rig.engine.all_orders(SYM) == []
