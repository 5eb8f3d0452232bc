"""The strategy API contract: params, warm-up, stops, latest_signal, timeframes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from strategy_shapes import MINUTE, frame, geometric, v_shape

from roottrading.domain import SignalStrength
from roottrading.strategies import BaseStrategy, Param, ParamError, grade
from roottrading.strategies.builtin.trend import EmaCross, SupertrendReversal
from roottrading.strategies.timeframes import align, resample


def test_param_validation_and_grid() -> None:
    p = Param(1.5, 0.5, 2.5, 0.5)
    assert p.grid() == [0.5, 1.0, 1.5, 2.0, 2.5]
    assert Param(3, 1, 5).grid() == [1, 2, 3, 4, 5]
    assert Param("a", choices=("a", "b")).grid() == ["a", "b"]
    assert p.validate(2) == 2.0 and isinstance(p.validate(2), float)
    with pytest.raises(ParamError, match="below the minimum"):
        p.validate(0.1)
    with pytest.raises(ParamError, match="expected a number"):
        p.validate(float("nan"))
    with pytest.raises(ParamError, match="above the maximum"):
        Param(5, 1, 3)  # a declaration whose default is out of range fails at import


def test_params_read_as_attributes_and_set_atomically() -> None:
    s = EmaCross(fast=5)
    assert s.fast == 5 and s.slow == 26 and s.params["sl_atr"] == 2.0
    with pytest.raises(ParamError):
        s.set_params(fast=7, slow=3)  # slow below its min -> nothing applied
    assert (s.fast, s.slow) == (5, 26)
    with pytest.raises(AttributeError, match="set_params"):
        s.fast = 3  # type: ignore[misc]
    assert isinstance(EmaCross.fast, Param)


def test_grade_and_strength_ranks() -> None:
    assert grade(np.array([0.1, 0.6, 1.5, 9.0, np.nan]), 0.5, 1, 2).tolist() == [0, 1, 2, 3, 0]
    assert SignalStrength.from_rank(int(grade(np.array([5.0]), 1, 2, 3)[0])) is SignalStrength.VERY_STRONG


def test_warmup_rows_never_signal_and_frame_is_validated() -> None:
    class Always(BaseStrategy):
        """BUY on every bar."""

        name = "always"

        @property
        def warmup(self) -> int:
            return 10

        def generate(self, bars):  # type: ignore[no-untyped-def]
            return self.entries(np.ones(len(bars), bool))

    sf = Always().signals(frame(geometric(30)))
    assert not sf.buys[:10].any() and sf.buys[10:].all()
    with pytest.raises(ValueError, match="missing columns \\['volume'\\]"):
        Always().signals(frame(geometric(30)).drop(columns="volume"))
    assert len(Always().signals(frame(geometric(30)).iloc[:0])) == 0


def test_stops_are_atr_multiples_on_the_right_side() -> None:
    df = frame(v_shape())
    s = EmaCross(sl_atr=2.0, tp_atr=4.0, trailing_pct=1.5)
    sf = s.signals(df)
    i = int(np.flatnonzero(sf.buys)[0])
    from roottrading.indicators import atr

    a = atr(df.high, df.low, df.close, 14)[i]
    c = df.close.iloc[i]
    assert sf.stop_loss[i] == pytest.approx(c - 2 * a) and sf.take_profit[i] == pytest.approx(c + 4 * a)
    assert sf.trailing_pct[i] == 1.5
    assert np.isnan(sf.stop_loss[sf.side == 0]).all()
    none = EmaCross(sl_atr=0.0, tp_atr=0.0).signals(df)
    assert np.isnan(none.stop_loss).all() and np.isnan(none.trailing_pct).all()


def test_custom_stop_from_strategy_overrides_atr_default() -> None:
    df = frame(v_shape())
    sf = SupertrendReversal().signals(df)
    i = int(np.flatnonzero(sf.buys)[0])
    from roottrading.indicators import supertrend

    assert sf.stop_loss[i] == supertrend(df.high, df.low, df.close, 10, 3.0)[0][i] < df.close.iloc[i]


def test_latest_signal_ignores_unclosed_bar_and_is_deterministic() -> None:
    df = frame(v_shape())
    s = EmaCross()
    i = int(np.flatnonzero(s.signals(df).buys)[0])
    cut = df.iloc[: i + 1].copy()
    a = s.latest_signal(cut, "BTCUSDT", "1m")
    b = s.latest_signal(cut, "BTCUSDT", "1m")
    assert a == b and a is not None
    assert a.time == int(cut.open_time.iloc[-1]) + MINUTE and a.price == cut.close.iloc[-1]
    assert a.stop_loss is not None and a.stop_loss < a.price < (a.take_profit or 0)
    live = pd.concat([cut, df.iloc[i + 1 : i + 2]]).assign(closed=[True] * (i + 1) + [False])
    assert s.latest_signal(live, "BTCUSDT", "1m") == a  # the in-progress bar is not evaluated
    assert s.latest_signal(df.iloc[:10], "BTCUSDT", "1m") is None  # not warm


def test_resample_has_no_lookahead() -> None:
    df = frame(np.arange(1.0, 13.0))  # 12 one-minute bars -> three 4-minute bars
    from roottrading.strategies.base import Bars

    htf, idx = resample(Bars.from_frame(df), "3m")
    assert htf.close.tolist() == [3.0, 6.0, 9.0, 12.0]
    assert htf.high.tolist() == [3.1, 6.1, 9.1, 12.1]
    # the first 3m bar (rows 0..2) is only visible from row 2, its last minute
    assert idx.tolist() == [-1, -1, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3]
    assert np.isnan(align(htf.close, idx)[:2]).all() and align(htf.close, idx)[5] == 6.0
    with pytest.raises(ValueError, match="cannot resample"):
        resample(Bars.from_frame(frame(np.arange(1.0, 13.0), step_ms=2 * MINUTE)), "3m")
