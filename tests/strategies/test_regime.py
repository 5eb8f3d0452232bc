"""Ride or React: regime detection and strength adaptation."""

from __future__ import annotations

import numpy as np
from strategy_shapes import frame, line, sine

from roottrading.strategies.builtin.oscillators import RsiCross
from roottrading.strategies.builtin.trend import EmaCross
from roottrading.strategies.regime import RANGE, TREND_DOWN, TREND_UP, VOL_HIGH, adapt, detect_regime


def test_detects_trend_range_and_volatility() -> None:
    up = detect_regime(frame(np.r_[sine(60), line(100, 160, 60)]))
    assert up.trend[-1] == TREND_UP and up.label().startswith("TREND_UP")
    down = detect_regime(frame(np.r_[sine(60), line(100, 50, 60)]))
    assert down.trend[-1] == TREND_DOWN
    rng = detect_regime(frame(sine(150)))
    assert (rng.trend[40:] == RANGE).all()
    c = sine(150)
    wild = frame(c, spread=0.1)
    wild.loc[140:, "high"] += 5.0
    wild.loc[140:, "low"] -= 5.0
    assert detect_regime(wild).volatility[-1] == VOL_HIGH


def test_adapt_rides_trends_and_reacts_in_ranges() -> None:
    reg = detect_regime(frame(np.r_[sine(60), line(100, 160, 60)]))
    n = len(reg.trend)
    side = np.zeros(n, np.int8)
    side[-1] = 1
    st = np.ones(n, np.int8)
    s, k = adapt(side, st, reg, "trend")  # with-trend trend-follower: boosted
    assert s[-1] == 1 and k[-1] == 2
    side[-1] = -1
    s, k = adapt(side, st, reg, "reversal")  # counter-trend fade: damped
    assert s[-1] == -1 and k[-1] == 0
    s, _ = adapt(side, np.zeros(n, np.int8), reg, "reversal")  # already WEAK: dropped
    assert s[-1] == 0

    rng = detect_regime(frame(sine(150)))
    side = np.zeros(150, np.int8)
    side[-1] = 1
    assert adapt(side, np.ones(150, np.int8), rng, "reversal")[1][-1] == 2  # range: react
    assert adapt(side, np.ones(150, np.int8), rng, "trend")[1][-1] == 0  # range: trend damped


def test_ride_or_react_param_applies_inside_signals() -> None:
    df = frame(np.r_[sine(60), line(100, 160, 60), line(160, 150, 8), line(150, 175, 12)])
    plain = EmaCross(fast=3, slow=8).signals(df)
    adapted = EmaCross(fast=3, slow=8, ride_or_react=True).signals(df)
    i = int(np.flatnonzero(plain.buys)[-1])
    assert adapted.regime is not None and str(adapted.regime[i]).startswith("TREND_UP")
    assert adapted.strength[i] == min(3, plain.strength[i] + 1)
    sig = EmaCross(fast=3, slow=8, ride_or_react=True).latest_signal(df.iloc[: i + 1], "BTCUSDT", "1m")
    assert sig is not None and sig.regime is not None and sig.regime.startswith("TREND_UP")
    assert RsiCross(ride_or_react=True).signals(df).regime is not None
