"""The DCA and pair-trading worked examples of docs/strategies.md end to end (issue 19): each code block as
written, in the `replay` backtest and in a demo run of the platform over the same candles, with the same
trades (tests/backtest/docs_examples.py); the trailing custom stop is tests/backtest/test_custom_stoploss.py.

The DCA example against a control with the same entries and exits and no callback: the addition changes the
trade (a lower average entry, a larger quantity) and shows in the demo's store as a second BUY of the cycle.
The pair example trades ETHUSDT from its ratio to BTCUSDT (informative): ETH's candles are made here from
BTCUSDT's bundled ones times a ratio that wobbles and dips twice (the fixtures stay in the repo)."""

from __future__ import annotations

import math
from pathlib import Path

import msgspec
import pytest

from roottrading.backtest.fast import FastRun
from roottrading.backtest.model import BacktestConfig, EngineUnavailable
from roottrading.backtest.overrides import parse_overrides
from roottrading.backtest.replay import run_replay
from roottrading.domain import Candle
from tests.backtest.docs_examples import demo_run, same_trades, settings_for, strategies_folder
from tests.backtest.helpers import config, hourly

PLAIN_DIP = '''

class PlainDip(DcaDip):
    """The same entries and exits without additions."""

    name = "plain_dip"
    position_adjustment = BaseStrategy.position_adjustment
'''
DIPS = ((80, 82), (110, 111))  # hours where ETH/BTC falls 1.5 % below its wobble


def dca_folder(tmp_path: Path) -> Path:
    return strategies_folder(tmp_path, "dca_dip.py", PLAIN_DIP)


async def test_the_dca_addition_changes_the_replay_trade(tmp_path: Path) -> None:
    folder = dca_folder(tmp_path)
    data = {"BTCUSDT": hourly()}
    dca = await run_replay(config(strategies=("dca_dip",), settings=settings_for(folder)), data)
    plain = await run_replay(config(strategies=("plain_dip",), settings=settings_for(folder)), data)
    assert dca.engine == "replay" and len(dca.trades) == len(plain.trades) >= 2
    for d, p in zip(dca.trades, plain.trades, strict=True):  # the same entries and exits
        assert (d.entry_time, d.exit_time, d.exit_price, d.exit_reason) == (
            p.entry_time,
            p.exit_time,
            p.exit_price,
            p.exit_reason,
        )
    first, control = dca.trades[0], plain.trades[0]
    # one addition of 100 quote at a lower price: a larger position at a lower average entry
    assert first.entry_price < control.entry_price
    assert abs((first.quantity - control.quantity) * first.entry_price - 100) < 5  # (both entered with 1,000)
    assert first.pnl > control.pnl


def test_the_fast_engine_refuses_a_strategy_with_position_adjustment(tmp_path: Path) -> None:
    cfg = config(strategies=("dca_dip",), engine="fast", settings=settings_for(dca_folder(tmp_path)))
    with pytest.raises(EngineUnavailable, match="position_adjustment"):
        FastRun(cfg, {"BTCUSDT": hourly()}, parse_overrides(cfg.settings))


async def test_a_demo_run_makes_the_same_dca_trades_as_replay(tmp_path: Path) -> None:
    folder = dca_folder(tmp_path)
    data = {"BTCUSDT": hourly()}
    url = await demo_run(tmp_path, folder, "dca_dip", data, hook="position_adjustment")
    out = await same_trades(url, config(strategies=("dca_dip",), settings=settings_for(folder)), data)
    assert len(out["matched"]) >= 2
    # the demo's first cycle holds two BUY orders: its entry and the addition
    first = min(out["cycles"], key=lambda c: c["created_at"])
    buys = [o for o in out["orders"] if o["cycle_id"] == first["id"] and o["side"] == "BUY"]
    assert len(buys) == 2 and all(o["status"] == "FILLED" for o in buys), buys


def eth_candles() -> list[Candle]:
    """ETHUSDT: BTCUSDT's bundled candles times a ratio near 0.075 that wobbles 0.3 % and dips 1.5 % in DIPS."""
    out = []
    for i, c in enumerate(hourly()):
        r = 0.075 * (1 + 0.003 * math.sin(i * 0.9)) * (0.985 if any(a <= i <= b for a, b in DIPS) else 1.0)
        px = {k: round(getattr(c, k) * r, 2) for k in ("open", "high", "low", "close")}
        out.append(msgspec.structs.replace(c, symbol="ETHUSDT", **px))
    return out


def pair_data() -> dict[str, list[Candle]]:
    return {"BTCUSDT": hourly(), "ETHUSDT": eth_candles()}


def pair_config(folder: Path) -> BacktestConfig:
    return config(strategies=("eth_btc_ratio",), symbols=("BTCUSDT", "ETHUSDT"), settings=settings_for(folder))


async def test_the_pair_example_trades_the_ratio_dips_in_replay(tmp_path: Path) -> None:
    folder = strategies_folder(tmp_path, "eth_btc_ratio.py")
    result = await run_replay(pair_config(folder), pair_data())
    assert result.engine == "replay"
    assert [t.symbol for t in result.trades] == ["ETHUSDT"] * len(result.trades) and len(result.trades) >= 2
    starts = [hourly()[a].close_time for a, _ in DIPS]
    assert [t.entry_time for t in result.trades] == starts  # entered at each dip's first hour, not before
    assert all(t.entry_tag == "z<-2" and t.exit_tag == "z>0" for t in result.trades)


async def test_a_demo_run_makes_the_same_pair_trades_as_replay(tmp_path: Path) -> None:
    folder = strategies_folder(tmp_path, "eth_btc_ratio.py")
    # from hour 30 (the 24-hour z-score is ready from hour 54, the dips are at 80 and 110); two symbols per
    # market hour and a strategy that rebuilds its pairs per row: paced slower than a single symbol, so a
    # loaded machine finishes an hour's exit before the next hour moves the clock (else it fills a candle late)
    data = {s: cs[30:] for s, cs in pair_data().items()}
    url = await demo_run(tmp_path, folder, "eth_btc_ratio", data, speed=5)
    out = await same_trades(url, pair_config(folder), data)
    assert len(out["matched"]) >= 2
