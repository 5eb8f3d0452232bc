"""position_adjustment (DCA, issue 19) through the trader and the coordinator in one host: the trader asks the
strategy on each price, the coordinator funds the addition like an entry (risk check, pocket reservation,
stored decision), the trader sends it as a BUY of the same cycle, whose quantity, average entry price and
fees follow from all its fills; at most `max_entry_adjustments` additions; refusals and failing callbacks
add nothing; when the cycle ends every reservation of it is released and the pocket moves by its PnL once.

The replay backtest and a demo run of the documented DCA example: tests/backtest/test_docs_examples.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from roottrading import ids
from roottrading import messages as m
from roottrading.clock import SimClock
from roottrading.domain import CycleStatus, OrderRequest, Side
from roottrading.runtime import Wiring
from roottrading.runtime.http import build_app
from roottrading.services.coordinator.adjust import split_pnl
from roottrading.services.coordinator.strategy_hooks import StrategyHooks
from roottrading.services.trader.cycle_hooks import CycleHooks
from roottrading.strategies import BaseStrategy
from roottrading.strategies.callbacks import CALLBACKS, check_callbacks, overrides_callbacks
from roottrading.strategies.cycle_callbacks import CycleView
from tests.trader.conftest import MIN, SYM, T0, Rig, new_engine, req

D = Decimal
RULES = """version: 1
rules:
  max_exposure_per_asset: {enabled: true, limit_pct: 100, action: shrink}
  max_total_exposure: {enabled: true, limit_pct: 100, action: shrink}
  max_position_size: {enabled: true, limit_pct: 70, action: reject}
"""


class Dca(BaseStrategy):
    """Adds `amount` quote each time the price is 2 % under the average entry; records its views."""

    name = "s1"
    max_entry_adjustments = 2
    amount: Any = D(1000)

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.views: list[CycleView] = []

    def generate(self, bars: Any) -> Any:  # pragma: no cover - never evaluated here
        raise AssertionError

    def position_adjustment(self, cycle: Any, now: int, price: Any, profit: Any) -> Any:
        self.views.append(cycle)
        return self.amount if profit < D("-0.02") else None


class Huge(Dca):
    amount = D(5_500)  # more than the active pocket has left (6,000 less the entry's 1,006), within the risk rules


class Broken(Dca):
    def position_adjustment(self, cycle: Any, now: int, price: Any, profit: Any) -> Any:
        raise ZeroDivisionError("bug in the strategy")


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


def coordinator(rig: Rig) -> Any:
    assert rig.host is not None
    return rig.host.services["coordinator"]


def use(rig: Rig, strat: Dca) -> Dca:
    """The strategy instance both services call (as in one process)."""
    coordinator(rig).hooks = StrategyHooks(None, instances={strat.name: strat})
    rig.core.hooks = CycleHooks(lambda: {strat.name: strat}, adjustments=rig.core._adjustments_done)
    return strat


async def funded_entry(rig: Rig, rid: str, qty: str = "0.05") -> str:
    """An entry funded by the coordinator (reservation + decision), sent to the trader; its cycle id."""
    answer = await coordinator(rig).manual_entry(req(rid, qty=qty), D(20000))
    assert answer["decision"] == "accepted", answer
    await rig.send(msgspec.convert(answer["request"], OrderRequest, strict=False))
    return ids.cycle_id(rid)


async def live_reservations(rig: Rig, cycle_id: str) -> list[Any]:
    return await coordinator(rig).ledger.reservations(status=["reserved", "consumed"], cycle_id=cycle_id)


async def active_pocket(rig: Rig) -> Any:
    return {p.pocket_type: p for p in await coordinator(rig).ledger.pockets(max_age_s=0)}["active"]


async def test_additions_are_funded_sent_on_the_same_cycle_and_limited(full: Rig) -> None:
    strat = use(full, Dca())
    before = await active_pocket(full)
    cid = await funded_entry(full, "r1")
    await full.bar(20000, 20050, 19900, 20000)  # entry filled at 20,000; profit 0: no addition
    c = await full.cycle(cid)
    assert c.status is CycleStatus.ACTIVE and c.quantity == D("0.04995") and full.core.stats["adjustments"] == 0
    await full.bar(20000, 20000, 19500, 19500)  # -2.5 %: 1,000 quote added at 19,500
    c = await full.cycle(cid)
    buys = [o for o in full.core._cycle_orders(cid) if o.side is Side.BUY]
    assert len(buys) == 2 and buys[1].quantity == D("0.05128") and buys[1].status.value == "FILLED"
    assert c.quantity == D("0.04995") + D("0.05128") * D("0.999")  # both fills, net of the base fees
    assert c.entry_price == (D(1000) + D("0.05128") * 19500) / (D("0.05") + D("0.05128"))  # the average
    assert c.fees > 0 and full.core.stats["adjustments"] == 1
    rows = await coordinator(full).decisions.query(limit=20)
    adds = [r for r in rows if r["signal_id"].startswith("adjust:")]
    assert [(r["decision"], r["details"]["stage"], r["details"]["cycle"]) for r in adds] == [
        ("accepted", "adjust", cid)
    ]
    assert len(await live_reservations(full, cid)) == 2  # the entry's and the addition's, tied to the cycle
    await full.bar(19500, 19500, 19000, 19000)  # -3.7 % under the new average: the second addition
    await full.bar(19000, 19000, 18500, 18500)  # still falling: the limit (2) is reached, nothing more
    assert full.core.stats["adjustments"] == 2 and len(await live_reservations(full, cid)) == 3
    # asked on each price while under the limit (with the additions filled so far), not once it is reached
    assert [v.adjustments for v in strat.views] == [0, 0, 1]
    await full.send(req("x1", Side.SELL, qty=None))  # the strategy's exit sells everything the cycle holds
    c = await full.cycle(cid)
    assert c.status is CycleStatus.COMPLETED and c.profit_loss is not None and c.profit_loss < 0
    assert c.exit_price == D(18500)

    assert full.host is not None
    assert await full.host.bus.drain(10)  # the coordinator settles the cycle's update
    assert not await live_reservations(full, cid), "the cycle's reservations were not all released"
    after = await active_pocket(full)
    # the pocket is back to its funds moved by the cycle's PnL, counted once (not capped at the entry's amount)
    # (each part is kept to the ledger's 12 decimal places)
    assert abs(after.current_value - (before.current_value + c.profit_loss)) < D("1e-9")
    assert after.used_value == before.used_value


async def test_the_coordinator_is_asked_without_the_trader_lock(full: Rig) -> None:
    """A risk check and a ledger write (an HTTP call, split) must not hold up other cycles' stops."""
    use(full, Dca())
    real, held = full.core.funder, []

    class Spy:
        async def adjust(self, req: OrderRequest, price: Decimal) -> dict[str, Any]:
            held.append(full.core.lock.locked())
            assert full.core.adjusting[req.cycle_id] is None  # marked as being funded meanwhile
            return await real.adjust(req, price)

    full.core.funder = Spy()
    cid = await funded_entry(full, "r1")
    await full.bar(20000, 20050, 19900, 20000)
    await full.bar(20000, 20000, 19500, 19500)
    assert held == [False] and full.core.stats["adjustments"] == 1 and not full.core.adjusting
    assert len([o for o in full.core._cycle_orders(cid) if o.side is Side.BUY]) == 2


async def test_an_addition_the_pocket_cannot_fund_is_refused_and_nothing_is_sent(full: Rig) -> None:
    use(full, Huge())
    cid = await funded_entry(full, "r1")
    await full.bar(20000, 20050, 19900, 20000)
    await full.bar(20000, 20000, 19500, 19500)
    c = await full.cycle(cid)
    assert c.status is CycleStatus.ACTIVE and c.quantity == D("0.04995")
    assert full.core.stats["adjustments"] == 0
    assert [o for o in full.core._cycle_orders(cid) if o.side is Side.BUY][1:] == []
    rows = [r for r in await coordinator(full).decisions.query(limit=20) if r["signal_id"].startswith("adjust:")]
    assert rows and all(r["decision"] == "rejected" and "insufficient funds" in r["reason"] for r in rows)
    assert len(await live_reservations(full, cid)) == 1


async def test_a_raising_position_adjustment_adds_nothing_and_is_counted(full: Rig) -> None:
    use(full, Broken())
    cid = await funded_entry(full, "r1")
    await full.bar(20000, 20050, 19900, 20000)
    await full.bar(20000, 20000, 19500, 19500)
    c = await full.cycle(cid)
    assert c.status is CycleStatus.ACTIVE and c.quantity == D("0.04995") and full.core.stats["adjustments"] == 0
    assert full.core.hooks.failures == {"s1": 2}


async def test_without_a_reachable_coordinator_nothing_is_added(rig: Rig) -> None:
    """Split mode with the coordinator down: the addition is not funded, so not sent; the cycle goes on."""
    rig.core.hooks = CycleHooks(lambda: {"s1": Dca()}, adjustments=rig.core._adjustments_done)
    rig.core.funder.url = "http://127.0.0.1:9"  # nothing listens there
    await rig.send(req("r1", qty="0.05"))
    cid = ids.cycle_id("r1")
    await rig.bar(20000, 20050, 19900, 20000)
    await rig.bar(20000, 20000, 19500, 19500)
    c = await rig.cycle(cid)
    assert c.status is CycleStatus.ACTIVE and c.quantity == D("0.04995") and rig.core.stats["adjustments"] == 0


async def test_the_coordinator_funds_an_addition_over_http_as_in_split_mode(full: Rig) -> None:
    """POST /adjust (a trader in another process): the same decision as the direct call; a bad body is 422."""
    assert full.host is not None
    cid = await funded_entry(full, "r1")
    body = {"request": m.to_builtins(req("a1", qty=None, quote_quantity=D(500), cycle_id=cid)), "price": "20000"}
    transport = httpx.ASGITransport(app=build_app(full.host))
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers={"Authorization": "Bearer t"}) as c:
        answer = (await c.post("/api/coordinator/adjust", json=body)).json()
        assert (await c.post("/api/coordinator/adjust", json={"price": "1"})).status_code == 422
    assert answer["decision"] == "accepted", answer
    funded = msgspec.convert(answer["request"], OrderRequest, strict=False)
    assert funded.cycle_id == cid and funded.quantity == D("0.025") and funded.reservation_id
    (res,) = [r for r in await live_reservations(full, cid) if r.id == funded.reservation_id]
    assert res.amount > D(500)  # the quantity at the price plus the fee and slippage buffers


def test_callback_list_load_check_and_pnl_split() -> None:
    assert "position_adjustment" in CALLBACKS and overrides_callbacks(Dca) == ["position_adjustment"]

    class Bad(Dca):
        max_entry_adjustments = -1

    with pytest.raises(ValueError, match="max_entry_adjustments"):
        check_callbacks(Bad)
    assert split_pnl([D(100), D(300)], D(-40)) == [D(-10), D(-30)]
    assert sum(split_pnl([D(3), D(3), D(3)], D(1))) == D(1)
