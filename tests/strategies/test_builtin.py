"""Every built-in strategy on crafted data: one input where it must fire, one where it must not."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from strategy_shapes import frame, geometric, inverted_v, line, sine, v_shape, zigzag

from roottrading.strategies import BaseStrategy
from roottrading.strategies.builtin import BUILTIN_STRATEGIES

BUY, SELL = 1, -1


@dataclass
class Case:
    fire: Callable[[], pd.DataFrame]
    side: int  # the side that must appear
    after: int  # ... at or after this row (the crafted event)
    quiet: Callable[[], pd.DataFrame]  # must produce no signal at all
    params: dict | None = None


def _flat_then(last_close: list[float], n: int = 40, **kw: object) -> pd.DataFrame:
    return frame(np.r_[zigzag(n), last_close], **kw)  # type: ignore[arg-type]


def _bar(df: pd.DataFrame, i: int, **values: float) -> pd.DataFrame:
    df = df.copy()
    for k, v in values.items():
        df.loc[df.index[i], k] = v
    return df


def _vol(n: int, spikes: dict[int, float]) -> np.ndarray:
    v = np.full(n, 100.0)
    for i, x in spikes.items():
        v[i] = x
    return v


def _pump(reverse: bool) -> pd.DataFrame:
    c = np.r_[zigzag(30), 100 * 1.03 ** np.arange(1, 6), 100 * 1.03**5 * 1.01]
    df = frame(c, volume=_vol(len(c), dict.fromkeys(range(30, 36), 600.0)))
    if reverse:  # last bar closes below the previous bar's low: exhaustion
        df = _bar(df, -1, close=df.low.iloc[-2] - 1.0, low=df.low.iloc[-2] - 1.2, open=df.close.iloc[-2])
    return df


def _sweep(reclaim: bool) -> pd.DataFrame:
    df = _flat_then([100.0])
    return _bar(df, -1, open=99.6, low=98.0, close=100.3 if reclaim else 99.0, high=100.4)


def _spike(react: bool) -> pd.DataFrame:
    c = np.r_[zigzag(40), 95.0, 98.0 if react else 95.3]
    df = frame(c, volume=_vol(len(c), {40: 600.0}))
    return _bar(df, 40, open=100.0, high=100.1, low=94.9)


def _rejection(reject: bool) -> pd.DataFrame:
    df = _flat_then([100.1])
    if reject:
        return _bar(df, -1, open=100.4, high=101.5, low=100.0, close=100.1)
    return _bar(df, -1, open=100.4, high=101.5, low=100.3, close=101.4)


def _vwap_dip(dip: bool) -> pd.DataFrame:
    c = np.r_[geometric(40, 100, 0.01), 100 * 1.01**40]
    df = frame(c)
    return _bar(df, -1, low=80.0) if dip else df


def _mtf(up: bool) -> pd.DataFrame:
    if up:
        c = np.r_[
            geometric(100, 100, 0.01),
            100 * 1.01**99 * (1 - 0.01 * np.arange(1, 5)),
            100 * 1.01**99 * 0.96 * (1 + 0.02 * np.arange(1, 4)),
        ]
    else:
        c = np.r_[geometric(100, 100, -0.01), 100 * 0.99**99 * (1 + 0.02 * np.arange(1, 4))]
    return frame(c)


MTF = {"htf_factor": 4, "htf_ema": 5, "rsi_period": 5}

CASES: dict[str, Case] = {
    "ema_cross": Case(lambda: frame(v_shape()), BUY, 60, lambda: frame(geometric())),
    "macd_crossover": Case(lambda: frame(v_shape()), BUY, 60, lambda: frame(geometric())),
    "ppo_crossover": Case(lambda: frame(v_shape()), BUY, 60, lambda: frame(geometric())),
    "trix_crossover": Case(lambda: frame(v_shape()), BUY, 60, lambda: frame(geometric())),
    "tema_slope": Case(lambda: frame(v_shape()), BUY, 60, lambda: frame(geometric())),
    "hull_slope": Case(lambda: frame(v_shape()), BUY, 60, lambda: frame(geometric())),
    "adx_direction": Case(lambda: frame(np.r_[sine(60), line(100, 160, 40)]), BUY, 60, lambda: frame(sine(150))),
    "supertrend_reversal": Case(lambda: frame(v_shape()), BUY, 60, lambda: frame(geometric())),
    "obv_crossover": Case(lambda: frame(v_shape()), BUY, 60, lambda: frame(geometric())),
    "rsi_cross": Case(
        lambda: frame(np.r_[line(200, 150, 40), line(150, 170, 21)[1:]]), BUY, 40, lambda: frame(geometric())
    ),
    "stochastic_oversold": Case(lambda: frame(v_shape()), BUY, 60, lambda: frame(geometric())),
    "stochrsi_rebound": Case(lambda: frame(v_shape()), BUY, 60, lambda: frame(geometric())),
    "williams_r_rebound": Case(lambda: frame(v_shape()), BUY, 60, lambda: frame(geometric())),
    "cci_reversal": Case(lambda: frame(inverted_v()), SELL, 60, lambda: frame(geometric())),
    "roc_threshold": Case(lambda: frame(np.r_[zigzag(40), line(100.5, 104, 4)]), BUY, 40, lambda: frame(zigzag(80))),
    "zscore_reversal": Case(lambda: frame(np.r_[zigzag(40), 96.0, 95.0, 99.0]), BUY, 40, lambda: frame(zigzag(80))),
    "bollinger_touch": Case(lambda: _bar(_flat_then([99.6]), -1, low=97.0), BUY, 40, lambda: frame(zigzag(80))),
    "donchian_breakout": Case(lambda: _flat_then([103.0]), BUY, 40, lambda: frame(zigzag(80))),
    "atr_breakout": Case(lambda: _flat_then([104.0]), BUY, 40, lambda: frame(zigzag(80))),
    "parabolic_sar_bounce": Case(lambda: frame(v_shape()), BUY, 60, lambda: frame(geometric())),
    "vwap_support_resistance": Case(lambda: _vwap_dip(True), BUY, 40, lambda: _vwap_dip(False)),
    "range_breakout": Case(
        lambda: _flat_then([103.0], volume=_vol(41, {40: 500.0})), BUY, 40, lambda: _flat_then([103.0])
    ),
    "resistance_rejection": Case(lambda: _rejection(True), SELL, 40, lambda: _rejection(False)),
    "mtf_confluence": Case(lambda: _mtf(True), BUY, 100, lambda: _mtf(False), MTF),
    "spike_reaction": Case(lambda: _spike(True), BUY, 41, lambda: _spike(False)),
    "liquidity_sweep": Case(lambda: _sweep(True), BUY, 40, lambda: _sweep(False)),
    "pump_dump": Case(lambda: _pump(True), SELL, 35, lambda: _pump(False)),
}


def test_every_builtin_has_a_case_and_a_docstring() -> None:
    assert set(CASES) == set(BUILTIN_STRATEGIES)
    assert len(BUILTIN_STRATEGIES) == 27
    for cls in BUILTIN_STRATEGIES.values():
        assert cls.__doc__ and ("BUY" in cls.__doc__ or "SELL" in cls.__doc__), cls.name


def _make(name: str) -> BaseStrategy:
    return BUILTIN_STRATEGIES[name](**(CASES[name].params or {}))


@pytest.mark.parametrize("name", sorted(CASES))
def test_fires_on_crafted_input(name: str) -> None:
    case = CASES[name]
    sf = _make(name).signals(case.fire())
    rows = np.flatnonzero(sf.side != 0)
    assert rows.size, f"{name} did not fire"
    assert (sf.side[case.after :] == case.side).any(), f"{name}: no {case.side} signal after row {case.after}"
    assert not (sf.side[: case.after] == case.side).any(), (
        f"{name}: {case.side} signal before the crafted event at rows {rows}"
    )
    i = int(np.flatnonzero(sf.side == case.side)[-1])
    assert 0 <= sf.strength[i] <= 3


@pytest.mark.parametrize("name", sorted(CASES))
def test_quiet_on_crafted_input(name: str) -> None:
    sf = _make(name).signals(CASES[name].quiet())
    rows = np.flatnonzero(sf.side != 0)
    assert rows.size == 0, f"{name} fired at rows {rows.tolist()} with sides {sf.side[rows].tolist()}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_latest_signal_matches_vectorised_row(name: str) -> None:
    """Live (last row) and backtest (whole frame) agree: cut the frame at the firing row."""
    case = CASES[name]
    df = case.fire()
    strat = _make(name)
    sf = strat.signals(df)
    i = int(np.flatnonzero(sf.side == case.side)[-1])
    sig = strat.latest_signal(df.iloc[: i + 1], "BTCUSDT", "1m")
    assert sig is not None
    assert sig.side.value == ("BUY" if case.side == BUY else "SELL")
    assert sig.id == f"{name}:BTCUSDT:1m:{int(df.open_time.iloc[i])}"
    assert sig.strength.rank == sf.strength[i]
