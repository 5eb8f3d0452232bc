"""Position callbacks in the trader (issue 19): custom_stoploss moves the stop (only tighter unless allowed),
custom_exit exits through the normal path, confirm_exit vetoes a target or signal exit but never a stop,
on_fill sees the strategy's fills, and a callback that raises leaves the cycle on its previous rules.

Driven through the trader's bus handlers over the simulator (tests/trader/conftest.py), the path live and
paper take; the replay backtest runs the same trader (tests/backtest/test_custom_stoploss_replay.py)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from roottrading import ids
from roottrading.clock import SimClock
from roottrading.domain import CycleStatus, Fill, Side
from roottrading.services.trader.cycle_hooks import CycleHooks
from roottrading.store import DecisionRepo
from roottrading.strategies import BaseStrategy
from roottrading.strategies.callbacks import CALLBACKS, overrides_callbacks
from roottrading.strategies.cycle_callbacks import CycleView, accept_stop, profit_ratio
from roottrading.strategies.loader import check_strategy_class
from tests.trader.conftest import MIN, T0, Rig, new_engine, req

D = Decimal


class Trail200(BaseStrategy):
    """A custom trailing stop 200 below the last price; records what it was called with."""

    name = "s1"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.calls: list[tuple[CycleView, int, Decimal, Decimal]] = []

    def generate(self, bars: Any) -> Any:  # pragma: no cover - never evaluated here
        raise AssertionError

    def custom_stoploss(self, cycle: Any, now: int, price: Any, profit: Any) -> Any:
        self.calls.append((cycle, now, price, profit))
        return price - 200


class Loose(Trail200):
    stoploss_can_loosen = True


class Broken(Trail200):
    def custom_stoploss(self, cycle: Any, now: int, price: Any, profit: Any) -> Any:
        raise ZeroDivisionError("bug in the strategy")

    def custom_exit(self, cycle: Any, now: int, price: Any, profit: Any) -> str | None:
        raise KeyError("also broken")

    def on_fill(self, fill: Any, cycle: Any) -> None:
        raise RuntimeError("on_fill blew up")


class TimeExit(BaseStrategy):
    """Exits on its own after two prices in the trade; vetoes every exit it may veto when `veto` is set."""

    name = "s1"
    veto = False

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.seen = 0
        self.asked: list[str] = []
        self.fills: list[tuple[Fill, CycleView]] = []

    def generate(self, bars: Any) -> Any:  # pragma: no cover - never evaluated here
        raise AssertionError

    def custom_exit(self, cycle: Any, now: int, price: Any, profit: Any) -> str | None:
        self.seen += 1
        return "held two bars" if self.seen >= 2 else None

    def confirm_exit(self, cycle: Any, reason: str, price: Any) -> str | None:
        self.asked.append(reason)
        return f"not now ({reason})" if self.veto else None

    def on_fill(self, fill: Any, cycle: Any) -> None:
        self.fills.append((fill, cycle))


class Vetoer(TimeExit):
    veto = True

    def custom_exit(self, cycle: Any, now: int, price: Any, profit: Any) -> str | None:
        return None


def _hook(rig: Rig, strat: Any) -> Any:
    rig.core.hooks = CycleHooks(lambda: {strat.name: strat})
    return strat


async def test_custom_stoploss_tightens_only_and_the_moved_stop_exits(rig: Rig) -> None:
    strat = _hook(rig, Trail200())
    await rig.send(req("r1", stop_loss=D("19000")))
    cid = ids.cycle_id("r1")
    await rig.bar(20000, 20600, 19950, 20500)  # closes 20,500: the strategy's stop 20,300 replaces 19,000
    c = await rig.cycle(cid)
    assert c.status is CycleStatus.ACTIVE and c.stop_loss == D(20300)
    view, now, price, profit = strat.calls[0]
    assert view.id == cid and view.symbol == "BTCUSDT" and view.strategy == "s1" and view.side is Side.BUY
    assert view.stop_loss == D(19000) and view.entry_price == D(20000) and view.quantity == D("0.00999")
    assert price == D(20500) and profit == D("0.025") and now == rig.clock.now_ms()
    await rig.bar(20500, 20550, 20350, 20400)  # the strategy now says 20,200: looser, not applied
    assert (await rig.cycle(cid)).stop_loss == D(20300)
    await rig.bar(20400, 20450, 20100, 20150)  # falls through 20,300: the simulator fills the stop there
    c = await rig.cycle(cid)
    assert c.status is CycleStatus.COMPLETED and c.close_reason == "stop_loss"
    assert D("20299.99") <= c.exit_price <= D(20300)


async def test_a_strategy_allowed_to_loosen_moves_its_stop_down(rig: Rig) -> None:
    _hook(rig, Loose())
    await rig.send(req("r1", stop_loss=D("19000")))
    cid = ids.cycle_id("r1")
    await rig.bar(20000, 20600, 19950, 20500)
    await rig.bar(20500, 20550, 20350, 20400)
    c = await rig.cycle(cid)
    assert c.status is CycleStatus.ACTIVE and c.stop_loss == D(20200)


async def test_raising_callbacks_keep_the_previous_rules(rig: Rig) -> None:
    strat = _hook(rig, Broken())
    await rig.send(req("r1", stop_loss=D("19000")))
    cid = ids.cycle_id("r1")
    await rig.bar(20000, 20600, 19950, 20500)
    c = await rig.cycle(cid)
    assert c.status is CycleStatus.ACTIVE and c.stop_loss == D(19000)  # neither a stop move nor an exit
    await rig.bar(20500, 20550, 18900, 18950)
    c = await rig.cycle(cid)
    assert c.status is CycleStatus.COMPLETED and c.close_reason == "stop_loss"  # the original stop still holds
    # per bar custom_exit and custom_stoploss each raised, and on_fill at the entry and at the exit
    assert rig.core.hooks.failures[strat.name] == 4
    assert (await rig.svc.health()).details["callback_failures"] == {"s1": 4}


async def test_custom_exit_sells_at_market_with_its_reason_and_on_fill_sees_both_fills(rig: Rig) -> None:
    strat = _hook(rig, TimeExit())
    await rig.send(req("r1"))
    cid = ids.cycle_id("r1")
    await rig.bar(20000, 20100, 19900, 20050)
    assert (await rig.cycle(cid)).status is CycleStatus.ACTIVE
    await rig.bar(20050, 20300, 20000, 20250)  # second price in the trade: the strategy exits
    c = await rig.cycle(cid)
    assert c.status is CycleStatus.COMPLETED and c.close_reason == "held two bars"
    assert c.exit_price == D(20250)  # at market after the bar: its close
    assert strat.asked == ["held two bars"]  # a custom exit is confirmed like any strategy exit
    (buy, at_entry), (sell, at_exit) = strat.fills
    assert buy.side is Side.BUY and at_entry.entry_price == D(20000) and at_entry.status == "ACTIVE"
    assert sell.side is Side.SELL and sell.price == D(20250) and at_exit.status == "COMPLETED"


async def test_confirm_exit_vetoes_a_target_and_a_signal_exit_never_a_stop(rig: Rig) -> None:
    strat = _hook(rig, Vetoer())
    rig.core.decisions = DecisionRepo(rig.host.db)  # type: ignore[union-attr]
    await rig.send(req("r1", stop_loss=D("19000"), take_profit=D("21000")))
    cid = ids.cycle_id("r1")
    await rig.bar(20000, 21500, 19900, 20100)  # passes the target: vetoed
    await rig.bar(20100, 21200, 20000, 20150)  # again: vetoed again, stored once
    assert (await rig.cycle(cid)).status is CycleStatus.ACTIVE
    await rig.send(req("x1", Side.SELL, qty=None))  # the strategy's exit signal: vetoed too
    assert (await rig.cycle(cid)).status is CycleStatus.ACTIVE
    assert strat.asked == ["take_profit", "take_profit", "signal"]
    assert rig.core.stats["exit_vetoes"] == 3
    rows = await rig.core.decisions.query(signal_id=f"exit:{cid}:take_profit")
    assert [(r["decision"], r["reason"]) for r in rows] == [
        ("exit_vetoed", "strategy veto of the take_profit exit: not now (take_profit)")
    ]
    assert await rig.core.decisions.query(signal_id=f"exit:{cid}:signal")
    await rig.bar(20150, 20200, 18800, 18900)  # through the stop: not offered for a veto
    c = await rig.cycle(cid)
    assert c.status is CycleStatus.COMPLETED and c.close_reason == "stop_loss"
    assert strat.asked == ["take_profit", "take_profit", "signal"]


async def test_a_vetoed_target_still_walks_the_stop_on_the_same_bar(rig: Rig) -> None:
    _hook(rig, Vetoer())
    await rig.send(req("r1", stop_loss=D("19000"), take_profit=D("21000")))
    cid = ids.cycle_id("r1")
    await rig.bar(20000, 21500, 18500, 18600)  # a bearish bar walks O-H-L-C: the target (vetoed), then the stop
    c = await rig.cycle(cid)
    assert c.status is CycleStatus.COMPLETED and c.close_reason == "stop_loss"


def test_stop_rules_profit_and_the_fast_engine_list() -> None:
    assert accept_stop(None, D(5), False) and accept_stop(D(5), D(6), False)
    assert not accept_stop(D(5), D(4), False) and not accept_stop(D(5), D(5), True)
    assert accept_stop(D(5), D(4), True)
    assert profit_ratio(D(100), D(103)) == D("0.03") and profit_ratio(None, D(1)) == 0
    assert {"custom_stoploss", "custom_exit", "confirm_exit", "on_fill"} <= set(CALLBACKS)
    assert overrides_callbacks(Trail200) == ["custom_stoploss"]
    assert overrides_callbacks(TimeExit) == ["custom_exit", "confirm_exit", "on_fill"]


@pytest.mark.parametrize("answer", ["abc", 0, -5, float("nan"), True])
async def test_a_stop_that_is_no_price_is_ignored_and_counted(rig: Rig, answer: Any) -> None:
    class Odd(Trail200):
        def custom_stoploss(self, cycle: Any, now: int, price: Any, profit: Any) -> Any:
            return answer

    _hook(rig, Odd())
    await rig.send(req("r1", stop_loss=D("19000")))
    await rig.bar(20000, 20600, 19950, 20500)
    assert (await rig.cycle(ids.cycle_id("r1"))).stop_loss == D(19000)
    assert rig.core.hooks.failures["s1"] == 1


SPLIT_STRATEGY = '''
from decimal import Decimal
import numpy as np
from roottrading.strategies import BaseStrategy


class Trail(BaseStrategy):
    """Its custom stop is what the split-mode trader must find."""
    name = "s1"

    def generate(self, bars):
        return self.entries(buy=np.zeros(len(bars), bool))

    def custom_stoploss(self, cycle, now, price, profit):
        return price - Decimal(100)
'''


async def test_a_trader_without_a_coordinator_loads_the_strategies_itself(tmp_path: Path) -> None:
    """Split mode: the trader process has no coordinator peer; it loads STRATEGIES_DIR like the coordinator."""
    folder = tmp_path / "strats"
    folder.mkdir()
    (folder / "trail.py").write_text(SPLIT_STRATEGY)
    rig = Rig(tmp_path, new_engine(), SimClock(T0 - MIN), tuning={"strategies_dir": str(folder)})
    await rig.start()
    try:
        assert rig.host is not None and rig.host.ctx.peer("coordinator") is None
        rig.core.last_price["BTCUSDT"] = D("20000")
        await rig.send(req("r1", stop_loss=D("19000")))
        await rig.bar(20000, 20600, 19950, 20500)
        assert (await rig.cycle(ids.cycle_id("r1"))).stop_loss == D(20400)
    finally:
        await rig.stop()


def test_a_callback_with_the_wrong_arguments_is_refused_at_load() -> None:
    class WrongArgs(Trail200):
        name = "wrong_args"

        def custom_stoploss(self, cycle: Any) -> Any:  # type: ignore[override]
            return None

    class Keywords(Trail200):
        name = "keywords"

        def custom_exit(self, *args: Any, **kw: Any) -> str | None:
            return None

    class Loosish(Trail200):
        name = "loosish"
        stoploss_can_loosen = "yes"  # type: ignore[assignment]

    with pytest.raises(ValueError, match=r"custom_stoploss must take \(cycle, now, price, profit\)"):
        check_strategy_class(WrongArgs)
    with pytest.raises(ValueError, match="stoploss_can_loosen must be True or False"):
        check_strategy_class(Loosish)
    check_strategy_class(Keywords)  # *args takes anything
    check_strategy_class(TimeExit)
