"""Backtests trade the universe as it was at each refresh, from history only.

Three symbols, a volume-ranked universe of two: CCCUSDT trades little for the first 2.5 hours and much after,
so it joins at the first refresh whose lookback sees it ahead (3h) and a member leaves. No entry on CCC before
that refresh; the leaver's cycle open across the refresh still exits; truncating the data after a refresh
instant does not change the members at it (no lookahead).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from typer.testing import CliRunner

from roottrading.backtest.fast import FastRun
from roottrading.backtest.model import BacktestConfig, EngineUnavailable
from roottrading.backtest.overrides import parse_overrides
from roottrading.backtest.runner import run_engine
from roottrading.backtest.universe import backtest_timeline
from roottrading.cli import app
from roottrading.datasets.demo import demo_candles
from roottrading.domain import Candle
from roottrading.universe import members_at

SYMBOLS = ("AAAUSDT", "BBBUSDT", "CCCUSDT")
HOUR = 3_600_000
UNIVERSE = "refresh: 1h\nlookback: 1h\nsource: {type: volume, top: 2, keep_top: 2, quote: USDT}\n"
STRATEGY = '''
import numpy as np
from roottrading.strategies import BaseStrategy, Entries


class HalfHourly(BaseStrategy):
    """BUY at minutes 25 and 55, SELL at minutes 5 and 35: the minute-55 cycle is open across each hour."""
    name = "half_hourly"

    @property
    def warmup(self) -> int:
        return 5

    def generate(self, bars):
        minute = (bars.open_time // 60_000) % 30
        side = np.where(minute == 25, 1, np.where(minute == 5, -1, 0)).astype(np.int8)
        return Entries(side=side, strength=np.full(len(side), 2, np.int8))
'''


def history() -> dict[str, list[Candle]]:
    """Five hours of 1m candles; CCC's quote volume x0.001 before 2h30, x1000 after."""
    out: dict[str, list[Candle]] = {s: [] for s in SYMBOLS}
    cs = demo_candles(list(SYMBOLS), "1m", n=300)
    t0 = cs[0].open_time
    for c in cs:
        if c.symbol == "CCCUSDT":
            k = 0.001 if c.open_time - t0 < 150 * 60_000 else 1000.0
            c = msgspec.structs.replace(c, volume=c.volume * k, quote_volume=c.quote_volume * k)
        out[c.symbol].append(c)
    return out


def config(tmp_path: Path, *, universe: bool, engine: str = "replay") -> BacktestConfig:
    folder = tmp_path / "strats"
    folder.mkdir(exist_ok=True)
    (folder / "half_hourly.py").write_text(STRATEGY)
    ufile = tmp_path / "universe.yaml"
    ufile.write_text(UNIVERSE)
    cs = history()
    # no loss-streak lock: the strategy keeps trading to the end of the data, whatever its results
    settings = {"strategies_dir": str(folder), "risk.strategy_loss_streak.enabled": "false"}
    if universe:
        settings["universe_config"] = str(ufile)
    return BacktestConfig(
        strategies=("half_hourly",),
        symbols=SYMBOLS,
        interval="1m",
        start_ms=cs["AAAUSDT"][0].open_time,
        end_ms=cs["AAAUSDT"][-1].close_time + 1,
        data="bundled",
        stake=Decimal(100),
        engine=engine,  # type: ignore[arg-type]
        settings=settings,
    )


async def test_a_pair_that_joins_midway_has_no_entry_before_it_is_a_member(tmp_path: Path) -> None:
    cs = history()
    cfg = config(tmp_path, universe=True)
    timeline = backtest_timeline(cfg.settings["universe_config"], cs, cfg.start_ms, cfg.end_ms)
    joins = next(sel for sel in timeline if "CCCUSDT" in sel.members)
    t0 = cfg.start_ms
    assert joins.at == t0 + 3 * HOUR and joins.removed  # seen ahead only once its lookback holds 2h30..3h
    assert members_at(timeline, t0) == ()  # nothing closed before the start: nothing exists yet
    assert set(members_at(timeline, joins.at - 1)) == {"AAAUSDT", "BBBUSDT"}
    leaver = joins.removed[0]

    result = await run_engine(cfg, cs)
    assert all(t.entry_time >= t0 + HOUR for t in result.trades)  # the first refresh with history is at 1h
    assert result.engine == "replay" and result.fallback is None
    ccc = [t for t in result.trades if t.symbol == "CCCUSDT"]
    assert ccc and min(t.entry_time for t in ccc) >= joins.at  # it trades, but only once a member
    # the leaver's cycle opened before the refresh is managed to its exit; no entry on it afterwards
    left = [t for t in result.trades if t.symbol == leaver]
    across = [t for t in left if t.entry_time < joins.at <= (t.exit_time or 0)]
    assert across and all(t.exit_reason != "end_of_data" for t in across)
    assert not [t for t in left if t.entry_time >= joins.at and members_at(timeline, t.entry_time) == joins.members]

    # the same run without a universe enters CCC from the start: the gate above is what kept it out
    free = await run_engine(config(tmp_path, universe=False), cs)
    assert min(t.entry_time for t in free.trades if t.symbol == "CCCUSDT") < joins.at


def test_members_at_a_refresh_do_not_depend_on_later_data(tmp_path: Path) -> None:
    cs = history()
    cfg = config(tmp_path, universe=True)
    path = cfg.settings["universe_config"]
    full = backtest_timeline(path, cs, cfg.start_ms, cfg.end_ms)
    assert len({sel.members for sel in full}) >= 2  # the universe does change over the period
    for sel in full:
        cut = {s: [c for c in series if c.close_time < sel.at] for s, series in cs.items()}
        assert backtest_timeline(path, cut, cfg.start_ms, sel.at)[-1].members == sel.members


def test_the_fast_engine_hands_a_universe_run_to_replay(tmp_path: Path) -> None:
    cfg = config(tmp_path, universe=True, engine="fast")
    single = BacktestConfig(**{**cfg.__dict__, "symbols": ("AAAUSDT",)})
    with pytest.raises(EngineUnavailable, match="pair universe"):
        FastRun(single, history(), parse_overrides(single.settings))


def test_cli_universe_option_checks_the_file_and_runs_on_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/rt.db")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    base = ["backtest", "--symbols", "BTCUSDT", "--interval", "1h", "--data", "bundled", "--no-progress"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: {type: volume, top: 0}\n")
    res = CliRunner().invoke(app, [*base, "--strategy", "ema_cross", "--universe", str(bad)])
    assert res.exit_code == 2 and "--universe: UNIVERSE_CONFIG" in res.output and "top" in res.output

    good = tmp_path / "u.yaml"
    good.write_text(
        "refresh: 1h\nlookback: 1d\nsource: {type: static, symbols: [BTCUSDT]}\nfilters: [{type: price, min: 1}]\n"
    )
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, [*base, "--strategy", "ema_cross", "--universe", str(good), "--json", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text())
    assert doc["engine"] == "replay" and "pair universe" in doc["fallback"]
