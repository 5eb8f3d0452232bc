"""The documented trailing custom stop (docs/strategies.md, section 11) end to end (issue 19).

The strategy is the docs' code block itself, plus a control class with the same entries and exits and no
callback. In the `replay` backtest the callback changes the trades (stops that climb above the entry close
them, some in profit, where the control waits for its slow signal); the `fast` engine refuses it; a
demo-like run of the platform over the same candles makes the same trades, trade for trade.
"""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from roottrading.backtest.drift import compare
from roottrading.backtest.fast import FastRun
from roottrading.backtest.model import EngineUnavailable
from roottrading.backtest.overrides import parse_overrides
from roottrading.backtest.replay import run_replay
from roottrading.clock import SimClock
from roottrading.config import load_settings
from roottrading.runtime import Host, Wiring
from roottrading.store import Database
from roottrading.store.tables import trade_cycles
from tests.backtest.helpers import config, hourly

DOCS = Path(__file__).resolve().parents[2] / "docs" / "strategies.md"
CONTROL = '''

class PlainCross(TrailCross):
    """The same entries and exits without the custom stop."""

    name = "plain_cross"
    custom_stoploss = BaseStrategy.custom_stoploss
'''
COORD = {"cooldown_s": 0, "max_signal_age_s": 0}
SETS = {f"coordinator.{k}": str(v) for k, v in COORD.items()}


def documented_example() -> str:
    text = DOCS.read_text()
    found = re.search(r"```python\n(# my_strategies/trail_cross\.py\n.*?)```", text, re.S)
    assert found, "the worked example is gone from docs/strategies.md"
    return found.group(1)


def strategies(tmp_path: Path) -> Path:
    folder = tmp_path / "strats"
    folder.mkdir(exist_ok=True)
    (folder / "trail_cross.py").write_text(documented_example() + CONTROL)
    return folder


def settings_for(folder: Path) -> dict[str, str]:
    return {**SETS, "strategies_dir": str(folder)}


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


async def demo_run(tmp_path: Path, folder: Path) -> str:
    """The platform fed the bundled candles by its replay service (as `roottrading demo` is), into a store;
    paced so the pipeline keeps up (tests/backtest/test_drift.py does the same with built-ins)."""
    url = f"sqlite+aiosqlite:///{tmp_path}/live.db"
    settings = load_settings(
        symbols="BTCUSDT",
        interval="1h",
        database_url=url,
        data_dir=tmp_path,
        strategies="trail_cross",
        strategies_dir=str(folder),
        replay_speed=40,
    )
    pipeline = ["logger", "portfolio", "pnl", "risk", "trader", "coordinator", "analyzer", "replay"]
    host = Host(settings, pipeline, clock=SimClock(), wiring=Wiring(replay_candles=hourly(), coordinator=COORD))
    await host.start()
    try:
        await asyncio.wait_for(host.services["replay"].done.wait(), 60)  # type: ignore[attr-defined]
        assert await host.bus.drain(30)
        trader = host.services["trader"].core  # type: ignore[attr-defined]
        coordinator = host.services["coordinator"]
        # one process: the trader called the coordinator's own instance of the strategy
        assert trader.hooks._strategy("trail_cross", "custom_stoploss") is coordinator.hooks.instances()["trail_cross"]  # type: ignore[attr-defined]
    finally:
        await host.stop()
    return url


async def test_a_demo_run_makes_the_same_trades_as_replay(tmp_path: Path) -> None:
    folder = strategies(tmp_path)
    url = await demo_run(tmp_path, folder)
    db = Database(url)
    try:
        cfg = config(strategies=("trail_cross",), settings=settings_for(folder))
        report = await compare(db, cfg, {"BTCUSDT": hourly()})
        async with db.begin() as conn:
            cycles = (await conn.execute(select(trade_cycles))).mappings().all()
    finally:
        await db.close()
    assert len(report.matched) >= 2 and not report.live_only and not report.backtest_only, report.as_json()
    for m in report.matched:
        assert not m.reasons, m  # same entry and exit times, prices, sizes and reasons
        assert m.exit_time_diff_ms == 0 and m.exit_price_diff_bps == 0 and Decimal(m.pnl_diff) == 0, m
    # and in the demo too the strategy's climbing stop closed trades above their entry
    assert [c for c in cycles if c["close_reason"] == "stop_loss" and c["exit_price"] > c["entry_price"]], cycles
