"""Strategy API v2, explicit outputs: enter long / exit long with tags; shorts refused on spot.

The tag must follow the trade: strategy row -> Signal -> (backtest engines, through the real coordinator and
trader in `replay`) -> trade cycle -> Trade. The 27 built-ins do not tag and keep their signals unchanged.
"""

from __future__ import annotations

import asyncio
import textwrap
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from roottrading.backtest.fast import run_fast
from roottrading.backtest.model import BacktestConfig
from roottrading.backtest.replay import run_replay
from roottrading.datasets import synthetic_candles
from roottrading.domain import Side
from roottrading.strategies.base import Bars, BaseStrategy, Entries
from roottrading.strategies.loader import check_strategy_class, load_folder
from roottrading.strategies.outputs import MAX_TAG_LEN, ShortNotSupported

TAGGED = textwrap.dedent(
    '''
    import numpy as np
    from roottrading.indicators import sma
    from roottrading.strategies.base import BaseStrategy

    class TaggedCross(BaseStrategy):
        """Close crossing its 10-bar mean: entries tagged by how far it crossed, exits tagged."""
        name = "tagged_cross"

        @property
        def warmup(self):
            return 12

        def generate(self, bars):
            c = bars.close
            m = sma(c, 10)
            prev_c, prev_m = np.r_[np.nan, c[:-1]], np.r_[np.nan, m[:-1]]
            up = (c > m) & (prev_c <= prev_m)
            down = (c < m) & (prev_c >= prev_m)
            far = np.where(c > m * 1.0005, "cross_far", "cross_near").astype(object)
            return self.outputs(enter_long=up, exit_long=down, enter_tag=far, exit_tag="cross_down")
    '''
)


def _frame(n: int = 300, seed: int = 3) -> pd.DataFrame:
    cs = synthetic_candles("BTCUSDT", "1m", n, seed=seed, start_price=20_000.0)
    cols = ("open_time", "open", "high", "low", "close", "volume")
    return pd.DataFrame({k: [getattr(c, k) for c in cs] for k in cols})


def _tagged(tmp_path: Path) -> type[BaseStrategy]:
    (tmp_path / "tagged.py").write_text(TAGGED)
    res = load_folder(tmp_path, check_bias=False)
    assert not res.errors, res.errors
    return res.strategies["tagged_cross"]


def test_outputs_maps_actions_to_sides_and_tags_to_their_rows() -> None:
    enter = np.array([1, 0, 1, 0, 1], bool)
    exit_ = np.array([0, 1, 0, 0, 1], bool)  # row 4 both: no signal, no tag
    e = BaseStrategy.outputs(enter_long=enter, exit_long=exit_, enter_tag=["a", None, "b", "c", "d"], exit_tag="x")
    assert e.side.tolist() == [1, -1, 1, 0, 0]
    assert e.tag is not None and e.tag.tolist() == ["a", "x", "b", None, None]
    assert BaseStrategy.outputs(enter_long=enter, exit_long=exit_).tag is None  # untagged: nothing to carry


def test_bad_tags_are_refused() -> None:
    with pytest.raises(ValueError, match="longer than"):
        BaseStrategy.outputs(enter_long=np.ones(2, bool), enter_tag="x" * (MAX_TAG_LEN + 1))
    with pytest.raises(ValueError, match="must be a string"):
        BaseStrategy.outputs(enter_long=np.ones(2, bool), enter_tag=[1, 2])
    with pytest.raises(ValueError, match="3 rows"):
        BaseStrategy.outputs(enter_long=np.ones(2, bool), enter_tag=["a", "b", "c"])


def test_short_outputs_are_refused_on_spot() -> None:
    quiet = np.zeros(3, bool)
    BaseStrategy.outputs(enter_long=quiet, enter_short=quiet, exit_short=quiet)  # reserved: all-False is fine
    with pytest.raises(ShortNotSupported, match="derivatives adapter"):
        BaseStrategy.outputs(enter_long=quiet, enter_short=np.array([0, 1, 0], bool))
    with pytest.raises(ShortNotSupported, match="exit_short"):
        BaseStrategy.outputs(enter_long=quiet, exit_short=np.array([0, 0, 1], bool))


def test_strategy_declaring_shorts_is_refused_at_load(tmp_path: Path) -> None:
    (tmp_path / "shorty.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            from roottrading.strategies.base import BaseStrategy

            class Shorty(BaseStrategy):
                name = "shorty"
                can_short = True

                def generate(self, bars):
                    return self.outputs(enter_long=np.zeros(len(bars), bool))
            """
        )
    )
    res = load_folder(tmp_path, check_bias=False)
    assert "shorty" not in res.strategies
    assert len(res.errors) == 1 and "derivatives adapter" in res.errors[0].error and "spot" in res.errors[0].error


def test_short_emitted_at_run_time_raises_for_the_analyzer_to_isolate() -> None:
    class Sneaky(BaseStrategy):
        name = "sneaky"

        @property
        def warmup(self) -> int:
            return 5

        def generate(self, bars: Bars) -> Entries:
            return self.outputs(enter_long=np.zeros(len(bars), bool), enter_short=np.ones(len(bars), bool))

    check_strategy_class(Sneaky)  # declares nothing: loads
    with pytest.raises(ShortNotSupported):
        Sneaky().latest_signal(_frame(50), "BTCUSDT", "1m")


def test_tags_reach_signals_offline_and_live_alike(tmp_path: Path) -> None:
    strat = _tagged(tmp_path)()
    frame = _frame(400)
    sf = strat.signals(frame)
    assert sf.tag is not None
    fired = np.flatnonzero(sf.side != 0)
    assert len(fired) > 6
    for i in fired:
        want = "cross_down" if sf.side[i] < 0 else ("cross_far", "cross_near")
        assert sf.tag[i] == want or sf.tag[i] in want
        live = strat.latest_signal(frame.iloc[: i + 1], "BTCUSDT", "1m")
        assert live is not None and live.tag == sf.tag[i] and live.side is (Side.BUY if sf.side[i] > 0 else Side.SELL)
    assert all(t is None for t in sf.tag[sf.side == 0])
    assert "tag" in sf.to_pandas().columns


def test_builtins_do_not_tag() -> None:
    from roottrading.strategies.loader import load_strategies

    loaded = load_strategies(None, use_entry_points=False, check_bias=False).strategies
    assert len(loaded) == 27
    frame = _frame(400)
    for cls in loaded.values():
        sf = cls().signals(frame)
        assert sf.tag is None, cls.name


def _config(candles: list[Any], tmp_path: Path) -> BacktestConfig:
    return BacktestConfig(
        strategies=("tagged_cross",),
        symbols=("BTCUSDT",),
        interval="1m",
        start_ms=candles[0].open_time,
        end_ms=candles[-1].close_time + 1,
        stake=Decimal(500),
        engine="fast",
        settings={"strategies_dir": str(tmp_path), "risk.strategy_loss_streak.enabled": "false"},
    )


def test_tags_follow_the_trade_through_both_backtest_engines(tmp_path: Path) -> None:
    """replay runs the real coordinator and trader: the tag goes signal -> request -> cycle -> Trade; the fast
    engine carries it too, trade for trade."""
    _tagged(tmp_path)
    candles = synthetic_candles("BTCUSDT", "1m", 600, seed=11, start_price=20_000.0)
    cfg = _config(candles, tmp_path)
    data = {"BTCUSDT": candles}
    fast = asyncio.run(run_fast(cfg, data))
    rep = asyncio.run(run_replay(replace(cfg, engine="replay"), data))
    assert len(rep.trades) >= 3
    assert [(t.entry_time, t.exit_time, t.pnl) for t in fast.trades] == [
        (t.entry_time, t.exit_time, t.pnl) for t in rep.trades
    ]
    for t in rep.trades:
        assert t.entry_tag in ("cross_far", "cross_near")
        assert t.exit_tag == ("cross_down" if t.exit_reason == "signal" else None)
    assert [(t.entry_tag, t.exit_tag) for t in fast.trades] == [(t.entry_tag, t.exit_tag) for t in rep.trades]
    assert any(t.exit_reason == "signal" for t in rep.trades)
    assert rep.trades[0].as_json()["entry_tag"] == rep.trades[0].entry_tag
