"""Backtest metrics: exposure from the trades, buy-and-hold, daily values, monthly returns."""

from __future__ import annotations

from decimal import Decimal

import pytest

from roottrading.backtest.metrics import buy_and_hold, daily_values, exposure
from roottrading.backtest.model import Trade
from roottrading.backtest.report import monthly_returns
from tests.backtest.helpers import hourly

DAY = 86_400_000


def trade(entry: int, exit_: int | None) -> Trade:
    z = Decimal(0)
    return Trade("BTCUSDT", "s", entry, Decimal(1), exit_, None if exit_ is None else Decimal(1), Decimal(1), z, z)


def test_exposure_counts_candle_times_with_an_open_trade() -> None:
    times = list(range(10))
    assert exposure([], times) == 0
    assert exposure([trade(2, 5)], times) == pytest.approx(0.3)  # open at 2, 3, 4; exited at 5
    assert exposure([trade(2, 5), trade(3, 4), trade(8, None)], times) == pytest.approx(0.5)  # 2,3,4 + 8,9
    assert exposure([trade(0, 10)], []) is None


def test_buy_and_hold_pays_the_fee_in_and_out() -> None:
    cs = hourly()
    bh, curve = buy_and_hold({"BTCUSDT": cs}, Decimal(1000), Decimal("0.001"))
    assert bh["return"] == pytest.approx(cs[-1].close / cs[0].open * 0.999 * 0.999 - 1, abs=1e-6)
    assert len(curve) == len(cs) and curve[-1][0] == cs[-1].close_time


def test_daily_values_and_monthly_returns() -> None:
    eq = [(0 * DAY + 1, 100.0), (0 * DAY + 2, 110.0), (2 * DAY + 5, 121.0)]
    assert daily_values(eq, 100.0) == [100.0, 110.0, 110.0, 121.0]  # start, day 0 end, day 1 (no candle), day 2
    jan31, feb1 = 1706659200000, 1706745600000  # 2024-01-31, 2024-02-01 UTC
    mr = monthly_returns([(jan31, 110.0), (feb1, 99.0)], 100.0)
    assert mr == {(2024, 1): pytest.approx(0.1), (2024, 2): pytest.approx(-0.1)}


def _loop_daily_values(equity: list[tuple[int, float]], start_value: float) -> list[float]:
    """The loop daily_values replaced (reference)."""
    out, day, last = [start_value], equity[0][0] // DAY, start_value
    for t, v in equity:
        d = t // DAY
        while d > day:
            out.append(last)
            day += 1
        last = v
    return [*out, last]


def _loop_exposure(trades: list[Trade], times: list[int]) -> float:
    spans = sorted((t.entry_time, t.exit_time if t.exit_time is not None else times[-1] + 1) for t in trades)
    inside, j, active_until = 0, 0, -1
    for t in times:
        while j < len(spans) and spans[j][0] <= t:
            active_until = max(active_until, spans[j][1])
            j += 1
        inside += t < active_until
    return inside / len(times)


def test_vectorised_metrics_equal_the_loops_they_replaced() -> None:
    """daily_values, exposure, max drawdown and buy-and-hold are vectorised for million-candle runs: they must
    give the same floats (not approximately) as the plain loops, which capital.metrics still uses."""
    import random

    from roottrading.backtest.metrics import max_drawdown
    from roottrading.capital import metrics as cm

    rng = random.Random(5)
    t, eq = 0, []
    for _ in range(3_000):
        t += rng.choice([60_000, 60_000, 3_600_000, 2 * DAY])  # some days without a point
        eq.append((t, 10_000 * (1 + rng.gauss(0, 0.05))))
    assert daily_values(eq, 10_000.0) == _loop_daily_values(eq, 10_000.0)
    values = [10_000.0] + [v for _, v in eq]
    assert max_drawdown(values) == cm.max_drawdown(values)
    times = [p[0] for p in eq]
    trades = []
    for _ in range(200):
        a = rng.choice(times)
        trades.append(trade(a, None if rng.random() < 0.05 else a + rng.randint(0, 5 * DAY)))
    assert exposure(trades, times) == _loop_exposure(trades, times)
    cs = hourly()
    _bh, curve = buy_and_hold({"BTCUSDT": cs, "ETHUSDT": cs[5:]}, Decimal(1000), Decimal("0.001"))
    qty = [500 * 0.999 / cs[0].open, 500 * 0.999 / cs[5].open]
    last = [cs[0].open, cs[5].open]
    for (ct, v), c in zip(curve, cs, strict=True):
        last[0] = c.close
        if c.close_time >= cs[5].close_time:
            last[1] = c.close
        assert ct == c.close_time and v == (0 + qty[0] * last[0] + qty[1] * last[1]) * 0.999


def test_buy_and_hold_is_computed_once_per_candle_set_and_never_for_other_candles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from roottrading.backtest import metrics

    calls: list[int] = []
    real = metrics._buy_and_hold
    monkeypatch.setattr(metrics, "_buy_and_hold", lambda c, b, f: calls.append(1) or real(c, b, f))
    monkeypatch.setattr(metrics, "_BH_MEMO", [])
    cs = hourly()
    first = buy_and_hold({"BTCUSDT": cs}, Decimal(1000), Decimal("0.001"))
    again = buy_and_hold({"BTCUSDT": cs}, Decimal(1000), Decimal("0.001"))  # an optimisation's next trial
    assert again == first and len(calls) == 1
    other = buy_and_hold({"BTCUSDT": cs[:-1]}, Decimal(1000), Decimal("0.001"))
    assert len(calls) == 2 and len(other[1]) == len(cs) - 1
    buy_and_hold({"BTCUSDT": cs}, Decimal(2000), Decimal("0.001"))
    assert len(calls) == 3  # another balance is another question


def test_backtest_metrics_reads_the_curve_once_with_the_same_results() -> None:
    """backtest_metrics takes the curve's columns once; its daily-return metrics and exposure are those of the
    public functions on the tuples."""
    import numpy as np

    from roottrading.backtest import metrics as m
    from roottrading.capital import metrics as cm
    from tests.backtest.helpers import config

    rng = np.random.default_rng(3)
    times = (np.arange(5_000) * 60_000 + 59_999).tolist()
    equity = list(zip(times, (10_000 + np.cumsum(rng.normal(0, 5, 5_000))).tolist(), strict=True))
    trades = [trade(times[10], times[400]), trade(times[1_000], times[1_200]), trade(times[4_000], None)]
    cs = hourly()
    got = m.backtest_metrics(config(), trades, equity, {"BTCUSDT": cs}, taker_fee=Decimal("0.001"))
    rets = cm.returns_from_equity(daily_values(equity, 10_000.0))
    assert got["sharpe"] == m._num(cm.sharpe(rets)) and got["sortino"] == m._num(cm.sortino(rets))
    assert got["exposure"] == m._num(exposure(trades, [t for t, _ in equity]))
    assert got["max_drawdown"] == m._num(m.max_drawdown([10_000.0] + [v for _, v in equity]))


def test_sorted_unique_is_numpys_unique() -> None:
    """buy_and_hold merges the symbols' close times with a sort (NumPy 2's hashed unique was slow): same array."""
    import numpy as np

    from roottrading.backtest.metrics import _sorted_unique

    rng = np.random.default_rng(4)
    cases = [np.arange(10, dtype=np.int64), np.array([], np.int64), np.array([7], np.int64)]
    cases += [rng.integers(0, 40, size=int(rng.integers(2, 60))).astype(np.int64) for _ in range(200)]
    cases.append(np.concatenate([np.arange(0, 100, 3), np.arange(0, 100, 5)]).astype(np.int64))  # two symbols
    for t in cases:
        got = _sorted_unique(t.copy())
        assert got.dtype == np.int64 and np.array_equal(got, np.unique(t))


def test_buy_and_hold_on_unaligned_symbols() -> None:
    """Several symbols whose close times interleave: one point per distinct close time, each symbol's last
    close (its first open before its first close)."""
    from roottrading.datasets import synthetic_candles

    a = synthetic_candles("AUSDT", "1h", 30, seed=1)
    b = synthetic_candles("BUSDT", "1m", 200, seed=2, start_ms=a[0].open_time + 7 * 60_000)
    _, curve = buy_and_hold({"AUSDT": a, "BUSDT": b, "CUSDT": []}, Decimal(1000), Decimal(0))
    times = sorted({c.close_time for c in a} | {c.close_time for c in b})
    assert [t for t, _ in curve] == times
    t = b[0].close_time  # B's first close; A has no close yet: A at its first open
    value = dict(curve)[t]
    assert value == pytest.approx(500 / a[0].open * a[0].open + 500 / b[0].open * b[0].close)
