"""Issue 18 item 3: the trader's safety state and the paper account survive restarts; a position gone from the
account closes its cycle "outside the platform" instead of an endless exit loop.

Every restart here builds everything anew (Host, exchange, engine): tests/trader/test_recovery.py restarts
over the same simulator object, which is exactly what hid a paper account starting afresh."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from roottrading import ids
from roottrading import messages as m
from roottrading.capital import PocketLedger
from roottrading.clock import SimClock
from roottrading.config import load_settings
from roottrading.domain import CycleStatus, OrderType, Side
from roottrading.runtime import Host
from roottrading.services.trader.paper_account import PaperAccount
from tests.trader.conftest import MIN, SYM, T0, Rig, candle, new_engine, req, reserve

D = Decimal
POCKETS = {"active": D(60), "buffer": D(30), "safety": D(10)}


async def risk_event(rig: Rig, action: str, rule: str, strategy: str | None = None) -> None:
    ev = m.RiskEvent(time=rig.clock.now_ms(), rule=rule, action=action, message="test", strategy=strategy)
    await rig.svc.on_risk(m.Message(id=f"{rule}:{action}", topic=m.RISK_EVENTS, key=rule, ts=0, payload=ev))


async def restarted(rig: Rig) -> Rig:
    """The same database, a new host, a new engine (a live exchange keeps its own state: a fresh engine here
    is only used when the test says the account is elsewhere)."""
    await rig.stop()
    new = Rig(rig.tmp, rig.engine, rig.clock, tuning=rig.tuning, wiring=rig.wiring, feed_exchange=rig.feed_exchange)
    await new.start()
    new.core.last_price[SYM] = D("20000")
    return new


async def test_a_kill_switch_and_a_users_pause_survive_a_restart(tmp_path: Path) -> None:
    r = Rig(tmp_path, new_engine(), SimClock(T0))
    await r.start()
    try:
        await risk_event(r, "kill_switch", "kill_switch")
        r = await restarted(r)
        assert r.core.killed and r.core.paused
        c = await r.core.handle_request(req("after-kill"))
        assert c.status is CycleStatus.CANCELED and c.close_reason == "trading paused: entry not sent"
        assert [o.client_order_id for o in r.engine.all_orders(SYM)] == []
        assert (await r.svc.health()).details["killed"] is True

        r.core.resume()  # a user's resume, then the user's own pause
        await r.svc.save_safety()
        r.core.pause()
        await r.svc.save_safety()
        await risk_event(r, "disable_strategy", "strategy_loss_streak", strategy="s2")
        r = await restarted(r)
        assert r.core.paused and not r.core.killed and r.core.paused_strategies == {"s2"}
        await risk_event(r, "resume", "max_drawdown")  # a risk cooldown ending never lifts the user's pause
        assert r.core.paused
    finally:
        await r.stop()


async def test_a_risk_pause_restored_is_still_lifted_by_its_cooldown(tmp_path: Path) -> None:
    r = Rig(tmp_path, new_engine(), SimClock(T0))
    await r.start()
    try:
        await risk_event(r, "pause", "max_drawdown")
        r = await restarted(r)
        assert r.core.paused and r.svc.risk_paused
        await risk_event(r, "resume", "max_drawdown")
        assert not r.core.paused
    finally:
        await r.stop()


# ------------------------------------------------------------------ the paper account
async def paper_host(tmp_path: Path, clock: SimClock) -> Host:
    """The trader as `roottrading up` builds it in demo mode: its own simulated exchange, nothing injected."""
    settings = load_settings(
        symbols=SYM,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/p.db",
        api_token="t",
        data_dir=tmp_path,
        trader_reconcile_s=3600,
        trader_balances_s=3600,
    )
    host = Host(settings, ["trader"], clock=clock)
    await host.start()
    return host


async def bar(host: Host, i: int, price: float) -> None:
    cd = candle(i, price, price, price, price)
    clock: Any = host.clock
    clock.set(max(clock.now_ms(), cd.close_time))
    await host.services["trader"].on_candle(m.Message(id=cd.key, topic=m.candles_topic(SYM), key=SYM, ts=0, payload=cd))


async def test_the_paper_account_keeps_the_position_across_a_restart(tmp_path: Path) -> None:
    clock = SimClock(T0)
    host = await paper_host(tmp_path, clock)
    trader: Any = host.services["trader"]
    assert isinstance(trader.exchange, PaperAccount)
    try:
        await bar(host, 0, 20_000)
        await trader.on_request(m.Message(id="r1", topic=m.ORDER_REQUESTS, key=SYM, ts=0, payload=req("r1")))
        c = await trader.cycles.get(ids.cycle_id("r1"))
        assert c.status is CycleStatus.ACTIVE
        before = trader.exchange.engine.balances()
        await host.stop()

        host = await paper_host(tmp_path, clock)  # everything new: host, trader, engine
        trader = host.services["trader"]
        after = trader.exchange.engine.balances()
        assert after == before, "the restarted paper account holds what the stored cycle holds"
        fills = await trader.orders.fills(limit=100)
        bought = sum((D(str(f["quantity"])) - D(str(f["commission"] or 0)) for f in fills), D(0))
        spent = sum((D(str(f["quote_quantity"])) for f in fills), D(0))
        assert after["BTC"].free == bought and after["USDT"].free == D(10_000) - spent  # BUY fee paid in BTC
        await bar(host, 1, 20_100)
        await trader.on_request(
            m.Message(id="x1", topic=m.ORDER_REQUESTS, key=SYM, ts=0, payload=req("x1", Side.SELL, qty=None))
        )
        c = await trader.cycles.get(ids.cycle_id("r1"))
        assert c.status is CycleStatus.COMPLETED, c.close_reason
        orders = trader.exchange.engine.all_orders(SYM)
        assert [(o.side, o.status.value) for o in orders] == [(Side.BUY, "FILLED"), (Side.SELL, "FILLED")]
        assert trader.core.stats["rejected"] == 0
    finally:
        await host.stop()


# ------------------------------------------------------------------ the live variant
async def test_a_position_sold_by_hand_closes_its_cycle_outside_the_platform(tmp_path: Path) -> None:
    r = Rig(tmp_path, new_engine(), SimClock(T0 - MIN))
    await r.start()
    try:
        r.core.last_price[SYM] = D("20000")
        await reserve(r, "res-1")
        await r.send(req("r1", reservation_id="res-1"))
        cid = ids.cycle_id("r1")
        c = await r.cycle(cid)
        assert c.status is CycleStatus.ACTIVE
        held = r.engine.balance("BTC").free
        # a person sells the coins on the exchange's own site: not our client id
        r.engine.place_order(SYM, Side.SELL, OrderType.MARKET, "web_by_hand_1", held)
        await r.core.settle()
        out = await r.core.reconcile()
        assert out["closed_outside"] == 1
        c = await r.cycle(cid)
        assert c.status is CycleStatus.COMPLETED and c.close_reason.startswith("closed outside the platform")
        assert c.profit_loss is None
        assert cid not in r.core.open
        closed = [x for x in r.published(m.CYCLE_UPDATES) if x.id == cid and x.status is CycleStatus.COMPLETED]
        assert closed, "the close is announced, so whoever settles reservations releases this one"

        # the coordinator's settlement of that announcement releases the reservation (with 0: PnL unknown)
        ledger = PocketLedger(r.host.db, r.clock, POCKETS)  # type: ignore[union-attr]
        await ledger.release(c.reservation_id, f"cycle {c.status.value.lower()}", pnl=c.profit_loss or D(0))
        assert (await ledger.get("res-1")).status == "released"

        for i in range(5):  # prices keep coming: no exit is ever sent for the vanished position
            await r.bar(20_000 - i, 20_000, 19_000, 19_500)
        sells = [o for o in r.engine.all_orders(SYM) if o.side is Side.SELL]
        assert [o.client_order_id for o in sells] == ["web_by_hand_1"]
        assert (await r.core.reconcile())["closed_outside"] == 0
    finally:
        await r.stop()


async def test_a_position_still_held_is_never_closed_outside(tmp_path: Path) -> None:
    r = Rig(tmp_path, new_engine(), SimClock(T0 - MIN))
    await r.start()
    try:
        r.core.last_price[SYM] = D("20000")
        await r.send(req("r1"))
        await r.send(req("r2"))
        r.engine.place_order(SYM, Side.BUY, OrderType.MARKET, "web_by_hand_2", D("0.2"))  # the user's own coins
        await r.core.settle()
        assert (await r.core.reconcile())["closed_outside"] == 0
        # the user sells their own coins and one cycle's worth: only the newest cycle is closed
        keep = (await r.cycle(ids.cycle_id("r1"))).quantity
        r.engine.place_order(SYM, Side.SELL, OrderType.MARKET, "web_by_hand_3", r.engine.balance("BTC").free - keep)
        await r.core.settle()
        assert (await r.core.reconcile())["closed_outside"] == 1
        assert (await r.cycle(ids.cycle_id("r1"))).status is CycleStatus.ACTIVE
        assert (await r.cycle(ids.cycle_id("r2"))).status is CycleStatus.COMPLETED
    finally:
        await r.stop()
