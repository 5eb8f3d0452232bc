"""Stops kept on the exchange (services/trader/exchange_stops.py), through the trader against the simulator:
placed when the entry fills (an OCO with a target), moved when a trailing or custom stop moves (rate-limited),
cancelled before a platform exit, its fill the cycle's exit, the same fills as local stops in simulation.
Crashes and restarts: test_exchange_stops_recovery.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from roottrading import ids
from roottrading.clock import SimClock
from roottrading.domain import CycleStatus, OrderStatus, OrderType, Side
from roottrading.services.trader.cycle_hooks import CycleHooks
from roottrading.services.trader.exchange_stops import EXCHANGE_STOP_REASON, EXCHANGE_TARGET_REASON
from roottrading.strategies.base import BaseStrategy
from tests.trader.conftest import MIN, SYM, T0, Rig, new_engine, req

D = Decimal
ON = {"trader_exchange_stops": True, "trader_exchange_stop_move_s": 150}


async def started(tmp_path: Path, engine: Any = None, clock: Any = None, **tuning: Any) -> Rig:
    r = Rig(tmp_path, engine or new_engine(), clock or SimClock(T0 - MIN), tuning={**ON, **tuning})
    await r.start()
    r.core.last_price.setdefault(SYM, D("20000"))
    return r


@pytest.fixture
async def xrig(tmp_path: Path) -> AsyncIterator[Rig]:
    r = await started(tmp_path)
    try:
        yield r
    finally:
        await r.stop()


def sells(rig: Rig) -> list[Any]:
    return [o for o in rig.engine.all_orders(SYM) if o.side is Side.SELL]


def resting(rig: Rig) -> list[Any]:
    return [o for o in rig.engine.open_orders(SYM) if o.side is Side.SELL]


async def test_the_filled_entry_gets_a_stop_loss_limit_on_the_exchange_stored_with_the_cycle(xrig: Rig) -> None:
    await xrig.send(req("r1", stop_loss=D("19000")))
    cid = ids.cycle_id("r1")
    (stop,) = resting(xrig)
    assert stop.type is OrderType.STOP_LOSS_LIMIT and stop.stop_price == D("19000")
    assert stop.price == D("18905")  # 0.5 % below the stop
    assert stop.quantity == D("0.00999")  # what the cycle holds (the buy's fee was taken in BTC)
    assert stop.client_order_id == ids.protective_order_id(cid, 0)
    stored = await xrig.svc.orders.get(stop.client_order_id)
    assert stored.cycle_id == cid and stored.status is OrderStatus.NEW
    assert (await xrig.cycle(cid)).status is CycleStatus.ACTIVE


async def test_a_fall_through_the_stop_is_sold_by_the_exchange_once(xrig: Rig) -> None:
    await xrig.send(req("r1", stop_loss=D("19000")))
    cid = ids.cycle_id("r1")
    await xrig.bar(20000, 20100, 18500, 19800)
    c = await xrig.cycle(cid)
    assert c.status is CycleStatus.COMPLETED and c.close_reason == EXCHANGE_STOP_REASON
    assert c.exit_order_id == ids.protective_order_id(cid, 0)
    (sold,) = [f for f in xrig.engine.my_trades(SYM, limit=100) if f.side is Side.SELL]
    assert sold.quantity == D("0.00999") and D("18905") <= sold.price <= D("19000")
    assert len(sells(xrig)) == 1  # the local stop sent nothing
    assert c.profit_loss == sold.quote_quantity - D(200) - sold.commission


async def test_no_stop_level_no_order_and_the_setting_off_changes_nothing(tmp_path: Path) -> None:
    rig = await started(tmp_path / "a")
    try:
        await rig.send(req("r1"))  # no stop, no trailing: nothing to protect
        assert resting(rig) == []
    finally:
        await rig.stop()
    off = await started(tmp_path / "b", trader_exchange_stops=False)
    try:
        await off.send(req("r1", stop_loss=D("19000")))
        assert resting(off) == []
        await off.bar(20000, 20100, 18500, 19800)
        assert (await off.cycle(ids.cycle_id("r1"))).close_reason == "stop_loss"  # the local stop, as before
    finally:
        await off.stop()


async def test_a_trailing_stop_moves_the_order_at_most_once_per_interval(xrig: Rig) -> None:
    await xrig.send(req("r1", trailing_pct=D("5")))
    cid = ids.cycle_id("r1")
    (first,) = resting(xrig)
    assert first.stop_price == D("19000")  # 5 % under the entry price
    await xrig.bar(20000, 20500, 20000, 20400)  # ~2 minutes after the placement: within 150 s, not moved
    assert [o.client_order_id for o in resting(xrig)] == [first.client_order_id]
    await xrig.bar(20400, 21000, 20400, 20900)  # ~3 minutes after: moved to 5 % under 21,000
    (moved,) = resting(xrig)
    assert moved.client_order_id == ids.protective_order_id(cid, 1) and moved.stop_price == D("19950")
    assert xrig.engine.get_order(SYM, first.client_order_id).status is OrderStatus.CANCELED
    await xrig.bar(20900, 20950, 19000, 19100)
    c = await xrig.cycle(cid)
    assert c.close_reason == EXCHANGE_STOP_REASON and c.exit_order_id == moved.client_order_id
    assert [f.price for f in xrig.engine.my_trades(SYM, limit=100) if f.side is Side.SELL] == [D("19950")]


class Tighten(BaseStrategy):
    """custom_stoploss: 300 under the price; keeps its stop on the exchange whatever the global setting."""

    name = "s1"
    exchange_stop = True

    def generate(self, bars: Any) -> Any:  # pragma: no cover - never evaluated here
        raise AssertionError

    def custom_stoploss(self, cycle: Any, now: int, price: Any, profit: Any) -> Any:
        return price - 300


async def test_a_custom_stop_moves_the_order_and_the_strategy_attribute_overrides_the_setting(
    tmp_path: Path,
) -> None:
    rig = await started(tmp_path, trader_exchange_stops=False, trader_exchange_stop_move_s=0)
    rig.core.hooks = CycleHooks(lambda: {"s1": Tighten()})
    try:
        await rig.send(req("r1", stop_loss=D("19000")))
        assert [o.stop_price for o in resting(rig)] == [D("19000")]
        await rig.bar(20000, 20600, 20000, 20500)
        assert [o.stop_price for o in resting(rig)] == [D("20200")]
        other = await started(tmp_path / "other", trader_exchange_stops=True)
        other.core.hooks = CycleHooks(lambda: {"s2": type("Off", (Tighten,), {"name": "s2", "exchange_stop": False})()})
        try:
            await other.send(req("r2", stop_loss=D("19000"), strategy="s2"))
            assert resting(other) == []  # the strategy said no
        finally:
            await other.stop()
    finally:
        await rig.stop()


async def test_a_signal_exit_cancels_the_stop_first_and_sells_once(xrig: Rig) -> None:
    await xrig.send(req("r1", stop_loss=D("19000")))
    cid = ids.cycle_id("r1")
    (stop,) = resting(xrig)
    await xrig.send(req("x1", side=Side.SELL, qty=None))
    c = await xrig.cycle(cid)
    assert c.status is CycleStatus.COMPLETED and c.close_reason == "signal"
    assert xrig.engine.get_order(SYM, stop.client_order_id).status is OrderStatus.CANCELED
    assert len([f for f in xrig.engine.my_trades(SYM, limit=100) if f.side is Side.SELL]) == 1
    assert resting(xrig) == []


async def test_a_target_makes_an_oco_whose_limit_leg_takes_the_profit(xrig: Rig) -> None:
    await xrig.send(req("r1", stop_loss=D("19000"), take_profit=D("21000")))
    cid = ids.cycle_id("r1")
    legs = {o.type: o for o in resting(xrig)}
    assert set(legs) == {OrderType.STOP_LOSS_LIMIT, OrderType.LIMIT_MAKER}
    assert legs[OrderType.LIMIT_MAKER].price == D("21000") and legs[OrderType.STOP_LOSS_LIMIT].stop_price == D(19000)
    list_ids = {xrig.engine.order_list_id(SYM, o.client_order_id) for o in legs.values()}
    assert len(list_ids) == 1 and list_ids != {-1}  # one OCO
    for o in legs.values():
        assert (await xrig.svc.orders.get(o.client_order_id)).status is OrderStatus.NEW  # both legs stored
    await xrig.bar(20000, 21500, 19900, 20100)
    c = await xrig.cycle(cid)
    assert c.close_reason == EXCHANGE_TARGET_REASON and c.exit_price == D("21000")
    assert c.exit_order_id == legs[OrderType.LIMIT_MAKER].client_order_id
    stop_leg = legs[OrderType.STOP_LOSS_LIMIT].client_order_id
    assert xrig.engine.get_order(SYM, stop_leg).status is OrderStatus.EXPIRED
    assert (await xrig.svc.orders.get(stop_leg)).status is OrderStatus.EXPIRED
    assert len([f for f in xrig.engine.my_trades(SYM, limit=100) if f.side is Side.SELL]) == 1
    assert len(sells(xrig)) == 2  # the two legs, nothing sent by the trader's own take-profit


async def test_an_oco_stop_leg_fill_and_a_signal_exit_cancelling_both_legs(xrig: Rig) -> None:
    await xrig.send(req("r1", stop_loss=D("19000"), take_profit=D("21000")))
    await xrig.send(req("r2", stop_loss=D("19500"), take_profit=D("22000")))
    await xrig.bar(20000, 20100, 19400, 19450)  # r2's stop leg fills, r1's OCO stays
    c2 = await xrig.cycle(ids.cycle_id("r2"))
    assert c2.close_reason == EXCHANGE_STOP_REASON and D("19402.5") <= c2.exit_price <= D(19500)
    assert len(resting(xrig)) == 2
    await xrig.send(req("x1", side=Side.SELL, qty=None))  # signal exit of r1: both legs cancelled first
    c1 = await xrig.cycle(ids.cycle_id("r1"))
    assert c1.status is CycleStatus.COMPLETED and c1.close_reason == "signal"
    assert resting(xrig) == [] and xrig.engine.balances()["BTC"].locked == 0
    assert len([f for f in xrig.engine.my_trades(SYM, limit=100) if f.side is Side.SELL]) == 2


class Vetoes(BaseStrategy):
    """Defines confirm_exit (never vetoing here): its target must stay a local, vetoable decision."""

    name = "s1"

    def generate(self, bars: Any) -> Any:  # pragma: no cover - never evaluated here
        raise AssertionError

    def confirm_exit(self, cycle: Any, reason: str, price: Any) -> str | None:
        return None


async def test_a_strategy_with_confirm_exit_keeps_its_target_local_and_the_stop_is_cancelled_first(
    xrig: Rig,
) -> None:
    xrig.core.hooks = CycleHooks(lambda: {"s1": Vetoes()})
    await xrig.send(req("r1", stop_loss=D("19000"), take_profit=D("21000")))
    cid = ids.cycle_id("r1")
    assert [o.type for o in resting(xrig)] == [OrderType.STOP_LOSS_LIMIT]  # no OCO
    await xrig.bar(20000, 21500, 19900, 20100)
    c = await xrig.cycle(cid)
    assert c.close_reason == "take_profit" and c.exit_price == D("21000")
    assert [o.status for o in sells(xrig) if o.type is OrderType.STOP_LOSS_LIMIT] == [OrderStatus.CANCELED]
    assert len([f for f in xrig.engine.my_trades(SYM, limit=100) if f.side is Side.SELL]) == 1


async def test_kill_switch_and_manual_close_cancel_the_stop(xrig: Rig) -> None:
    await xrig.send(req("r1", stop_loss=D("19000")))
    await xrig.send(req("r2", stop_loss=D("19100")))
    assert len(resting(xrig)) == 2
    await xrig.core.close(ids.cycle_id("r1"))
    assert len(resting(xrig)) == 1
    await xrig.core.kill_switch("test")
    assert resting(xrig) == []
    for r in ("r1", "r2"):
        assert (await xrig.cycle(ids.cycle_id(r))).status is CycleStatus.COMPLETED
    assert len([f for f in xrig.engine.my_trades(SYM, limit=100) if f.side is Side.SELL]) == 2


@pytest.mark.parametrize(
    ("bars", "stops"),
    [
        ([(20000, 20100, 18500, 19800)], {"stop_loss": D("19000")}),  # a wick through the stop
        ([(20000, 20100, 19500, 19600), (18700, 18800, 18600, 18750)], {"stop_loss": D("19000")}),  # a gap
        ([(20000, 21500, 19900, 20100)], {"stop_loss": D("19000"), "take_profit": D("21000")}),  # the target
    ],
)
async def test_in_simulation_the_exchange_stop_fills_where_the_local_one_does(
    tmp_path: Path, bars: list[tuple[int, int, int, int]], stops: dict[str, Any]
) -> None:
    """The simulator fills a resting stop (or OCO) on its own path: same price, same PnL as the local stop
    order placed before the bar (stops.py), so demo and backtest results do not depend on the setting."""
    out = []
    for on in (False, True):
        rig = await started(tmp_path / str(on), trader_exchange_stops=on)
        try:
            await rig.send(req("r1", **stops))
            for b in bars:
                await rig.bar(*b)
            c = await rig.cycle(ids.cycle_id("r1"))
            assert c.status is CycleStatus.COMPLETED
            out.append((c.exit_price, c.profit_loss, c.close_reason.split(" ")[0]))
        finally:
            await rig.stop()
    assert out[0] == out[1]


ONLY_ATTRIBUTE = """
import numpy as np
from roottrading.strategies import BaseStrategy


class Guarded(BaseStrategy):
    \"\"\"No callback at all: only the choice of keeping its stop on the exchange.\"\"\"
    name = "s1"
    exchange_stop = True

    def generate(self, bars):
        return self.entries(buy=np.zeros(len(bars), bool))
"""


async def test_split_mode_finds_a_strategy_that_only_sets_exchange_stop(tmp_path: Path) -> None:
    folder = tmp_path / "strats"
    folder.mkdir()
    (folder / "guarded.py").write_text(ONLY_ATTRIBUTE)
    rig = Rig(tmp_path, new_engine(), SimClock(T0 - MIN), tuning={"strategies_dir": str(folder)})
    await rig.start()  # the global setting off: the attribute alone asks for the exchange stop
    rig.core.last_price[SYM] = D("20000")
    try:
        assert rig.host is not None and rig.host.ctx.peer("coordinator") is None
        await rig.send(req("r1", stop_loss=D("19000")))
        assert [o.stop_price for o in resting(rig)] == [D("19000")]
    finally:
        await rig.stop()


def test_an_exchange_stop_that_is_no_bool_is_refused_at_load() -> None:
    from roottrading.strategies.loader import check_strategy_class

    class Maybe(Tighten):
        name = "maybe"
        exchange_stop = "yes"  # type: ignore[assignment]

    with pytest.raises(ValueError, match="exchange_stop must be True, False or None"):
        check_strategy_class(Maybe)
    check_strategy_class(Tighten)
