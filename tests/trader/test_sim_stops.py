"""Simulated stops fill where the simulator's intra-bar path meets them, not at the bar's close (issue 17,
item 12).

Before: the trader walked its own copy of the candle path after the simulator had been fed the bar, then sent
a MARKET exit that filled at the last price, the close (stop 19,000, wick to 18,500, close 19,800: sold at
19,800). Now the exit the path reaches is placed on the simulator as a stop order before the bar is fed, and
the simulator's own path fills it: at the stop price, or at the open when the bar gaps through it.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from roottrading import ids
from roottrading import messages as m
from roottrading.clock import SimClock
from roottrading.domain import CycleStatus, Fill, OrderStatus, OrderType, Side, Tick
from roottrading.exchange.sim import SimConfig, SimEngine, SimExchange
from roottrading.exchange.sim import market as sim_market
from roottrading.services.trader import position, service
from roottrading.services.trader.exchange_factory import btcusdt_rules
from tests.trader.conftest import MIN, SYM, T0, Rig, new_engine, req
from tests.trader.test_recovery import Crash, FaultyExchange

D = Decimal
TICK = D("0.01")  # BTCUSDT's tick size
FEE = D("0.001")  # the simulator's default taker/maker fee


async def _exit(rig: Rig, cycle_id: str) -> tuple[object, list[Fill]]:
    c = await rig.cycle(cycle_id)
    assert c.status is CycleStatus.COMPLETED, c
    fills = [f for f in rig.engine.my_trades(SYM, limit=1000) if f.side is Side.SELL]
    return c, fills


async def test_the_issue_example_stop_fills_at_the_stop_not_the_close(rig: Rig) -> None:
    await rig.send(req("r1", stop_loss=D("19000")))
    cid = ids.cycle_id("r1")
    await rig.bar(20000, 20100, 18500, 19800)  # wick to 18,500, close 19,800
    c, fills = await _exit(rig, cid)
    assert c.close_reason == "stop_loss"
    assert D(19000) - TICK <= c.exit_price <= D(19000)
    (f,) = fills
    assert f.quantity == D("0.00999") and f.commission == (f.quantity * f.price * FEE).quantize(D("0.00000001"))
    assert c.profit_loss == f.quote_quantity - D(200) - f.commission  # bought 0.01 @ 20,000, fee in BTC


async def test_a_gap_down_through_the_stop_fills_at_the_open(rig: Rig) -> None:
    await rig.send(req("r1", stop_loss=D("19000")))
    cid = ids.cycle_id("r1")
    await rig.bar(20000, 20100, 19500, 19600)
    assert (await rig.cycle(cid)).status is CycleStatus.ACTIVE
    await rig.bar(18700, 18800, 18600, 18750)  # opens below the stop
    c, _ = await _exit(rig, cid)
    assert c.close_reason == "stop_loss" and c.exit_price == D(18700)


async def test_take_profit_touched_inside_the_bar_fills_at_the_target(rig: Rig) -> None:
    await rig.send(req("r1", stop_loss=D("19000"), take_profit=D("21000")))
    cid = ids.cycle_id("r1")
    await rig.bar(20000, 21500, 19900, 20100)  # bearish O-H-L-C: the high passes 21,000 first, closes at 20,100
    c, (f,) = await _exit(rig, cid)
    assert c.close_reason == "take_profit" and c.exit_price == f.price == D(21000)
    assert c.profit_loss == D("0.00999") * 21000 - 200 - D("0.00999") * 21000 * FEE


async def test_a_favourable_gap_through_the_target_fills_at_the_open(rig: Rig) -> None:
    await rig.send(req("r1", take_profit=D("21000")))
    cid = ids.cycle_id("r1")
    await rig.bar(20000, 20500, 19900, 20400)
    await rig.bar(21300, 21400, 21200, 21250)
    c, _ = await _exit(rig, cid)
    assert c.close_reason == "take_profit" and c.exit_price == D(21300)


async def test_trailing_stop_raised_inside_the_bar_fills_at_its_level(rig: Rig) -> None:
    await rig.send(req("r1", trailing_pct=D("5")))
    cid = ids.cycle_id("r1")
    # bullish O-L-H-C: 19,950 is above the 19,000 level; the high raises it to 20,900; the close is below it
    await rig.bar(20000, 22000, 19950, 20500)
    c, _ = await _exit(rig, cid)
    assert c.close_reason == "trailing_stop" and c.exit_price == D(20900)
    assert c.trailing_extreme == D(22000)


async def test_trailing_stop_gapped_through_fills_at_the_open(rig: Rig) -> None:
    await rig.send(req("r1", trailing_pct=D("5")))
    cid = ids.cycle_id("r1")
    await rig.bar(20000, 22000, 19950, 21900)  # level raised to 20,900
    assert (await rig.cycle(cid)).status is CycleStatus.ACTIVE
    await rig.bar(20500, 20600, 20400, 20450)
    c, _ = await _exit(rig, cid)
    assert c.close_reason == "trailing_stop" and c.exit_price == D(20500)


async def test_the_exit_is_a_stop_order_on_the_simulator_not_a_market_order(rig: Rig) -> None:
    await rig.send(req("r1", stop_loss=D("19000")))
    cid = ids.cycle_id("r1")
    await rig.bar(20000, 20100, 18500, 19800)
    c = await rig.cycle(cid)
    order = rig.engine.get_order(SYM, c.exit_order_id)
    assert order.type is OrderType.STOP_LOSS_LIMIT and order.stop_price == D(19000)
    stored = await rig.svc.orders.get(c.exit_order_id)
    assert (stored.type, stored.stop_price, stored.status) == (order.type, order.stop_price, order.status)


def test_one_intra_bar_path_the_simulators() -> None:
    """The trader walks its stops along the simulator's path function, not a copy of its own."""
    assert service.candle_path is sim_market.candle_path
    assert not hasattr(position, "candle_path")


@pytest.mark.parametrize("mode", ["before_send", "after_send"])
async def test_a_crash_around_the_stop_order_then_the_redelivered_bar_exits_once_at_the_stop(
    tmp_path: Path, mode: str
) -> None:
    """The stop's intent is stored before it is sent; after a crash before or after the send, reconciliation
    re-sends it (same client id, same stop) or adopts it, and the redelivered bar fills it once."""
    engine, clock = new_engine(), SimClock(T0 - MIN)
    first = Rig(tmp_path, engine, clock)
    faulty = FaultyExchange(SimExchange(engine, clock), mode)
    faulty.armed = False
    await first.start(faulty)
    first.core.last_price[SYM] = D(20000)
    await first.send(req("r1", stop_loss=D("19000")))
    cid = ids.cycle_id("r1")
    faulty.armed = True
    with pytest.raises(Crash):
        await first.bar(20000, 20100, 18500, 19800)
    exit_id = (await first.cycle(cid)).exit_order_id
    assert (await first.svc.orders.get(exit_id)).status is OrderStatus.PENDING_NEW
    await first.stop()
    clock.advance(31_000)  # older than any send in flight: reconciliation may re-send it (control.py)
    second = Rig(tmp_path, engine, clock)
    await second.start()
    try:
        second.i = first.i - 1  # the bus redelivers the bar whose handling crashed
        await second.bar(20000, 20100, 18500, 19800)
        c = await second.cycle(cid)
        assert c.status is CycleStatus.COMPLETED and c.close_reason == "stop_loss" and c.exit_price == D(19000)
        sells = [o for o in engine.all_orders(SYM) if o.side is Side.SELL]
        assert [(o.client_order_id, o.type, o.stop_price) for o in sells] == [
            (exit_id, OrderType.STOP_LOSS_LIMIT, D(19000))
        ]
    finally:
        await second.stop()


async def test_live_an_exchange_with_its_own_market_gets_a_market_exit_at_the_tick(tmp_path: Path) -> None:
    """Live (the trader does not feed the exchange): the trader sees each tick as it comes, so a met stop is
    a MARKET exit right away, filled at the market near the level (nothing is placed ahead of the data)."""
    engine, clock = new_engine(), SimClock(T0 - MIN)
    r = Rig(tmp_path, engine, clock, feed_exchange=False)
    await r.start()
    try:
        assert not r.svc.feed_market
        r.core.last_price[SYM] = D(20000)
        await r.send(req("r1", stop_loss=D("19000")))
        cid = ids.cycle_id("r1")
        for i, px in enumerate((19500, 18990)):  # the exchange's own market moves; the trader sees the ticks
            t = Tick(symbol=SYM, time=T0 + i * 1000, price=px, quantity=1.0)
            engine.on_tick(t)
            await r.svc.on_tick(m.Message(id=f"t{i}", topic=m.ticks_topic(SYM), key=SYM, ts=0, payload=t))
        c = await r.cycle(cid)
        assert c.status is CycleStatus.COMPLETED and c.close_reason == "stop_loss" and c.exit_price == D(18990)
        assert engine.get_order(SYM, c.exit_order_id).type is OrderType.MARKET
    finally:
        await r.stop()


async def test_a_symbol_without_stop_orders_falls_back_to_a_market_exit_after_the_bar(tmp_path: Path) -> None:
    """The symbol's allowed order types are respected: no STOP_LOSS_LIMIT, so no stop order is sent; the
    exit goes out at market after the bar (at its close), as before."""
    rules = dataclasses.replace(btcusdt_rules(), order_types=frozenset({"LIMIT", "LIMIT_MAKER", "MARKET"}))
    engine = SimEngine([rules], SimConfig(), {"USDT": D(10000)}, start_time=T0 - MIN)
    engine.on_trade(SYM, T0 - MIN, D(20000))
    r = Rig(tmp_path, engine, SimClock(T0 - MIN))
    await r.start()
    try:
        r.core.last_price[SYM] = D(20000)
        await r.send(req("r1", stop_loss=D("19000")))
        await r.bar(20000, 20100, 18500, 19800)
        c = await r.cycle(ids.cycle_id("r1"))
        assert c.status is CycleStatus.COMPLETED and c.close_reason == "stop_loss" and c.exit_price == D(19800)
        assert [o.type for o in engine.all_orders(SYM) if o.side is Side.SELL] == [OrderType.MARKET]
    finally:
        await r.stop()


async def test_a_stop_the_bar_does_not_trigger_is_cancelled_and_sold_at_market(rig: Rig) -> None:
    """Prices off the tick grid: the stop 19,000.005 is met by a low of 19,000.004, but on the grid the stop
    order is 19,000.00, which the simulator's path never reaches. The order is cancelled after the bar and the
    position sold at market: never left resting, never unmanaged."""
    await rig.send(req("r1", stop_loss=D("19000.005")))
    cid = ids.cycle_id("r1")
    await rig.bar(20000, 20100, 19000.004, 19800)
    c = await rig.cycle(cid)
    assert c.status is CycleStatus.COMPLETED and c.close_reason == "stop_loss" and c.exit_price == D(19800)
    sells = [o for o in rig.engine.all_orders(SYM) if o.side is Side.SELL]
    assert [(o.type, o.status) for o in sells] == [
        (OrderType.STOP_LOSS_LIMIT, OrderStatus.CANCELED),
        (OrderType.MARKET, OrderStatus.FILLED),
    ]
    assert rig.engine.open_orders() == [] and rig.engine.balance("BTC").locked == 0
