"""Indicators beyond TA-Lib on inputs whose answer is known in closed form."""

from __future__ import annotations

import numpy as np

import roottrading.indicators as ti


def test_hma_on_a_line_has_the_closed_form_lag() -> None:
    x = np.arange(100.0)
    # WMA(n) of a unit-slope line lags (n-1)/3: 2*WMA(10)-WMA(20) = x+1/3, then WMA(4) lags 1
    h = ti.hma(x, 20)
    assert np.isnan(h[:22]).all() and not np.isnan(h[22])
    np.testing.assert_allclose(h[22:], x[22:] + 1 / 3 - 1, atol=1e-9)


def test_supertrend_flips_with_the_trend() -> None:
    c = np.r_[np.linspace(100, 150, 60), np.linspace(150, 100, 60)]
    line, d = ti.supertrend(c + 1, c - 1, c, 10, 3.0)
    assert d[50] == 1 and line[50] < c[50]
    assert d[-1] == -1 and line[-1] > c[-1]
    assert np.count_nonzero(np.diff(d[10:]) != 0) == 1
    assert np.isnan(line[:10]).all() and (d[:10] == 0).all()


def test_vwap_cumulative_anchored_and_rolling() -> None:
    h = np.array([2.0, 4, 6, 8])
    lo = h - 2
    c = h - 1  # typical price = h - 1
    v = np.array([1.0, 1, 2, 0])
    np.testing.assert_allclose(ti.vwap(h, lo, c, v), [1, 2, 3.5, 3.5])
    np.testing.assert_allclose(ti.vwap(h, lo, c, v, anchor=np.array([0, 0, 1, 1])), [1, 2, 5, 5])
    np.testing.assert_allclose(ti.vwap(h, lo, c, v, window=2), [np.nan, 2, 13 / 3, 5])


def test_zscore_nan_on_flat_and_sign_on_jump() -> None:
    x = np.r_[np.full(30, 10.0), 20.0]
    z = ti.zscore(x, 20)
    assert np.isnan(z[25])  # zero deviation: undefined, not inf
    assert z[-1] > 4


def test_cross_helpers_ignore_warmup() -> None:
    a = np.array([np.nan, 1, 3, 2, 0])
    assert ti.crossed_above(a, 2.0).tolist() == [False, False, True, False, False]
    assert ti.crossed_below(a, 2.0).tolist() == [False, False, False, False, True]
