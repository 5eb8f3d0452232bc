"""Trade-cycle transitions against the simulated exchange (real BTCUSDT filters, 0.1% fees)."""

from __future__ import annotations

from decimal import Decimal

from roottrading import ids
from roottrading import messages as m
from roottrading.domain import CycleStatus, OrderStatus, OrderType, Side
from roottrading.exchange.sim import SimConfig
from tests.trader.conftest import SYM, Rig, new_engine, req

D = Decimal


async def test_market_entry_is_stored_before_announced_and_active(rig: Rig) -> None:
    await rig.send(req("r1"))
    c = await rig.cycle(ids.cycle_id("r1"))
    assert c.status is CycleStatus.ACTIVE
    assert c.entry_price == D(20000) and c.quantity == D("0.00999")  # 0.01 bought, 0.00001 BTC fee
    assert c.fees == D("0.2")  # base fee valued at the fill price
    engine_order = rig.engine.get_order(SYM, c.entry_order_id)
    assert engine_order.status is OrderStatus.FILLED
    announced = rig.published(m.CYCLE_UPDATES)
    assert announced[-1].status is CycleStatus.ACTIVE and announced[-1].id == c.id
    fills = rig.published(m.TRADE_EXECUTIONS)
    assert [f.trade_id for f in fills] == ["1"]
    bal = rig.published(m.PORTFOLIO_BALANCES)[-1]
    assert {b.asset: b.free for b in bal.balances} == {"BTC": D("0.00999"), "USDT": D("9800")}
    assert bal.total_value == D("0.00999") * 20000 + 9800


async def test_limit_entry_rests_then_fills(rig: Rig) -> None:
    await rig.send(req("r1", type=OrderType.LIMIT, price="19500"))
    cid = ids.cycle_id("r1")
    assert (await rig.cycle(cid)).status is CycleStatus.WAITING_ENTRY
    await rig.bar(20000, 20100, 19800, 19900)  # does not reach 19500
    assert (await rig.cycle(cid)).status is CycleStatus.WAITING_ENTRY
    await rig.bar(19900, 19950, 19400, 19600)
    c = await rig.cycle(cid)
    assert c.status is CycleStatus.ACTIVE and c.entry_price == D(19500)
    assert c.fees == D("0.00001") * 19500  # maker fee 0.1% in BTC


async def test_limit_entry_cancelled_by_client_id(rig: Rig) -> None:
    await rig.send(req("r1", type=OrderType.LIMIT, price="19500"))
    c = await rig.cycle(ids.cycle_id("r1"))
    order = await rig.core.cancel(c.entry_order_id)
    assert order.status is OrderStatus.CANCELED
    c = await rig.cycle(c.id)
    assert c.status is CycleStatus.CANCELED and c.quantity == 0
    assert rig.engine.open_orders() == [] and rig.engine.balance("USDT").locked == 0


async def test_stop_loss_hit_exact_pnl(rig: Rig) -> None:
    await rig.send(req("r1", stop_loss=D("19000"), take_profit=D("22000")))
    await rig.bar(20000, 20100, 19500, 19600)  # above the stop
    cid = ids.cycle_id("r1")
    assert (await rig.cycle(cid)).status is CycleStatus.ACTIVE
    await rig.bar(19600, 19700, 18900, 18950)  # bearish: O-H-L-C, H->L falls through 19000: sold at the stop
    c = await rig.cycle(cid)
    assert c.status is CycleStatus.COMPLETED and c.close_reason == "stop_loss"
    # buy 0.01 @ 20000 = 200 USDT, fee 0.00001 BTC; sell 0.00999 @ 19000 = 189.81, fee 0.18981 USDT
    assert c.exit_price == D(19000)
    assert c.profit_loss == D("189.81") - D("200") - D("0.18981")  # -10.37981
    assert c.fees == D("0.2") + D("0.18981")
    assert c.profit_loss_percent == (c.profit_loss / 200 * 100).quantize(D("0.0001"))
    assert rig.engine.balance("USDT").free == D(10000) + c.profit_loss


async def test_take_profit_hit(rig: Rig) -> None:
    await rig.send(req("r1", stop_loss=D("19000"), take_profit=D("21000")))
    await rig.bar(20000, 21100, 19900, 21050)  # bullish O-L-H-C: L->H rises through 21000: sold at the target
    c = await rig.cycle(ids.cycle_id("r1"))
    assert c.status is CycleStatus.COMPLETED and c.close_reason == "take_profit"
    assert c.exit_price == D(21000)
    assert c.profit_loss == D("209.79") - 200 - D("0.20979")


async def test_trailing_stop_moves_up_then_triggers(rig: Rig) -> None:
    await rig.send(req("r1", trailing_pct=D("5")))
    cid = ids.cycle_id("r1")
    assert (await rig.cycle(cid)).trailing_extreme == D(20000)
    await rig.bar(20000, 22000, 19500, 21900)  # bullish O-L-H-C: 19500 > 19000 level, then extreme 22000
    c = await rig.cycle(cid)
    assert c.status is CycleStatus.ACTIVE and c.trailing_extreme == D(22000)
    await rig.bar(21900, 21950, 21000, 21100)  # level 20900 not reached
    assert (await rig.cycle(cid)).status is CycleStatus.ACTIVE
    await rig.bar(21100, 21150, 20800, 20850)  # H->L falls through the 20900 level: sold at the level
    c = await rig.cycle(cid)
    assert c.status is CycleStatus.COMPLETED and c.close_reason == "trailing_stop" and c.exit_price == D(20900)


async def test_partial_fill_then_exit_cancels_remainder_and_sells_only_what_is_held(tmp_path) -> None:
    from roottrading.clock import SimClock
    from tests.trader.conftest import MIN, T0

    r = Rig(tmp_path, new_engine(config=SimConfig(volume_cap=D("0.5"))), SimClock(T0 - MIN))
    await r.start()
    try:
        await r.send(req("r1", type=OrderType.LIMIT, price="19500", qty="0.01"))
        await r.bar(20000, 20000, 19400, 19600, vol=0.008)  # cap 0.004 BTC of this bar
        cid = ids.cycle_id("r1")
        c = await r.cycle(cid)
        assert c.status is CycleStatus.ACTIVE and c.quantity == D("0.004") - D("0.000004")
        entry = await r.svc.orders.get(c.entry_order_id)
        assert entry.status is OrderStatus.PARTIALLY_FILLED
        await r.send(req("x1", Side.SELL, qty=None))  # strategy exit: whole position
        await r.bar(19600, 19700, 19550, 19650, vol=10)
        c = await r.cycle(cid)
        assert c.status is CycleStatus.COMPLETED and c.close_reason == "signal"
        assert (await r.svc.orders.get(c.entry_order_id)).status is OrderStatus.CANCELED
        exit_order = r.engine.get_order(SYM, c.exit_order_id)
        assert exit_order.quantity == D("0.00399")  # 0.003996 held, rounded down to the 0.00001 step
        assert r.engine.balance("BTC").free == D("0.000006")  # dust below one step stays
    finally:
        await r.stop()


async def test_manual_close_and_pause_blocks_entries_not_exits(rig: Rig) -> None:
    await rig.send(req("r1"))
    rig.core.pause()
    await rig.send(req("r2"))
    c2 = await rig.cycle(ids.cycle_id("r2"))
    assert c2.status is CycleStatus.CANCELED and "paused" in c2.close_reason
    assert len(rig.engine.all_orders(SYM)) == 1
    c1 = await rig.core.close(ids.cycle_id("r1"))
    assert c1.status is CycleStatus.COMPLETED and c1.close_reason == "manual"
    rig.core.resume()
    await rig.send(req("r3"))
    assert (await rig.cycle(ids.cycle_id("r3"))).status is CycleStatus.ACTIVE


async def test_kill_switch_closes_everything(rig: Rig) -> None:
    await rig.send(req("r1"))
    await rig.send(req("r2", type=OrderType.LIMIT, price="19000", strategy="s2"))
    ev = m.RiskEvent(time=0, rule="daily_loss", action="kill_switch", message="limit hit")
    await rig.svc.on_risk(m.Message(id="k", topic=m.RISK_EVENTS, key=None, ts=0, payload=ev))
    c1, c2 = await rig.cycle(ids.cycle_id("r1")), await rig.cycle(ids.cycle_id("r2"))
    assert c1.status is CycleStatus.COMPLETED and c1.close_reason == "kill_switch"
    assert c2.status is CycleStatus.CANCELED
    assert rig.engine.open_orders() == [] and rig.core.paused
    await rig.send(req("r3"))
    assert (await rig.cycle(ids.cycle_id("r3"))).status is CycleStatus.CANCELED


async def test_filter_and_balance_failures_fail_the_cycle_with_the_reason(rig: Rig) -> None:
    await rig.send(req("small", qty="0.0001", reservation_id="res-1"))  # 2 USDT < MIN_NOTIONAL 10
    c = await rig.cycle(ids.cycle_id("small"))
    assert c.status is CycleStatus.FAILED and "MIN_NOTIONAL" in c.close_reason and c.reservation_id == "res-1"
    await rig.send(req("big", qty="1"))  # 20 000 USDT > 10 000
    c = await rig.cycle(ids.cycle_id("big"))
    assert c.status is CycleStatus.FAILED and "insufficient balance" in c.close_reason
    assert rig.engine.all_orders(SYM) == []
    assert [u.status for u in rig.published(m.CYCLE_UPDATES)] == [CycleStatus.FAILED, CycleStatus.FAILED]


async def test_redelivered_requests_create_one_order(rig: Rig) -> None:
    for _ in range(3):
        await rig.send(req("r1"))
    assert len(rig.engine.all_orders(SYM)) == 1
    for _ in range(2):
        await rig.send(req("x1", Side.SELL, qty=None))
    assert len(rig.engine.all_orders(SYM)) == 2
    assert (await rig.cycle(ids.cycle_id("r1"))).status is CycleStatus.COMPLETED
    assert rig.core.stats["duplicates"] >= 2


async def test_a_fill_seen_again_after_its_id_was_forgotten_is_not_counted_twice(rig: Rig) -> None:
    """seen_trades is bounded (issue 17 item 14): a forgotten trade id that comes back (a late push, a
    my_trades poll) must not be added to the cycle's fills again."""
    from roottrading.bounded import RecentSet

    await rig.send(req("r1"))
    cid = ids.cycle_id("r1")
    c = await rig.cycle(cid)
    core = rig.core
    core.seen_trades = RecentSet(1)
    core.seen_trades.add(("OTHER", "x"))  # the entry's trade id is forgotten
    (fill,) = rig.engine.my_trades(SYM)
    assert await core._apply_fill(core.order_cache[c.entry_order_id], fill) is False  # the store knew it
    assert [f.trade_id for f in core.fills[cid]] == [fill.trade_id]
    await core._advance(cid)
    assert (await rig.cycle(cid)).quantity == c.quantity
