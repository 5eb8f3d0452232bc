"""The documented trailing custom stop (docs/strategies.md, section 11) end to end (issue 19).

The strategy is the docs' code block itself, plus a control class with the same entries and exits and no
callback. In the `replay` backtest the callback changes the trades (stops that climb above the entry close
them, some in profit, where the control waits for its slow signal); the `fast` engine refuses it; a
demo-like run of the platform over the same candles makes the same trades, trade for trade.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from roottrading.backtest.fast import FastRun
from roottrading.backtest.model import EngineUnavailable
from roottrading.backtest.overrides import parse_overrides
from roottrading.backtest.replay import run_replay
from tests.backtest.docs_examples import demo_run, same_trades, settings_for, strategies_folder
from tests.backtest.helpers import config, hourly

CONTROL = '''

class PlainCross(TrailCross):
    """The same entries and exits without the custom stop."""

    name = "plain_cross"
    custom_stoploss = BaseStrategy.custom_stoploss
'''


def strategies(tmp_path: Path) -> Path:
    return strategies_folder(tmp_path, "trail_cross.py", CONTROL)


async def test_the_custom_stop_changes_the_replay_trades(tmp_path: Path) -> None:
    folder = strategies(tmp_path)
    data = {"BTCUSDT": hourly()}
    trail = await run_replay(config(strategies=("trail_cross",), settings=settings_for(folder)), data)
    plain = await run_replay(config(strategies=("plain_cross",), settings=settings_for(folder)), data)
    assert trail.engine == plain.engine == "replay"
    assert len(trail.trades) >= 2 and len(plain.trades) >= 2
    # the control's stop is the ATR stop under the entry: it exits by its signal, never by a stop in profit
    assert not [t for t in plain.trades if t.exit_reason == "stop_loss" and t.pnl > 0]
    # the custom stop climbs with the closes: stop-loss exits above the entry price
    locked = [t for t in trail.trades if t.exit_reason == "stop_loss" and t.exit_price and t.exit_price > t.entry_price]
    assert locked, trail.trades
    # the same first entry, closed earlier by the climbing stop than by the control's signal
    assert trail.trades[0].entry_time == plain.trades[0].entry_time
    assert (trail.trades[0].exit_time or 0) < (plain.trades[0].exit_time or 0)


def test_the_fast_engine_refuses_a_strategy_with_a_custom_stop(tmp_path: Path) -> None:
    folder = strategies(tmp_path)
    cfg = config(strategies=("trail_cross",), engine="fast", settings=settings_for(folder))
    with pytest.raises(EngineUnavailable, match="custom_stoploss"):
        FastRun(cfg, {"BTCUSDT": hourly()}, parse_overrides(cfg.settings))


async def test_a_demo_run_makes_the_same_trades_as_replay(tmp_path: Path) -> None:
    folder = strategies(tmp_path)
    data = {"BTCUSDT": hourly()}
    url = await demo_run(tmp_path, folder, "trail_cross", data, hook="custom_stoploss")
    out = await same_trades(url, config(strategies=("trail_cross",), settings=settings_for(folder)), data)
    assert len(out["matched"]) >= 2
    # and in the demo too the strategy's climbing stop closed trades above their entry
    cycles = out["cycles"]
    assert [c for c in cycles if c["close_reason"] == "stop_loss" and c["exit_price"] > c["entry_price"]], cycles
