"""Incremental forms give the same last value as the full-array computation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import roottrading.indicators as ti
from roottrading.domain import Candle


@pytest.fixture(scope="module")
def btc(fixtures_dir: Path) -> pd.DataFrame:
    df = pd.read_csv(
        fixtures_dir / "indicators/talib_generated/talib_binance_btcusdt_1d.csv.gz",
        usecols=["open", "high", "low", "close", "volume"],
    )
    df.insert(0, "open_time", np.arange(len(df), dtype=np.int64) * 86_400_000)
    return df.iloc[:300].reset_index(drop=True)


FULL: dict[str, Callable[[pd.DataFrame], np.ndarray]] = {
    "ema": lambda d: ti.ema(d.close, 12),
    "rsi": lambda d: ti.rsi(d.close, 14),
    "atr": lambda d: ti.atr(d.high, d.low, d.close, 14),
    "adx": lambda d: ti.adx(d.high, d.low, d.close, 14),
    "macd": lambda d: ti.macd(d.close)[0],
    "sar": lambda d: ti.sar(d.high, d.low),
    "supertrend": lambda d: ti.supertrend(d.high, d.low, d.close)[0],
    "hma": lambda d: ti.hma(d.close, 20),
    "vwap": lambda d: ti.vwap(d.high, d.low, d.close, d.volume),
    "bb": lambda d: ti.bbands(d.close)[0],
    "obv": lambda d: ti.obv(d.close, d.volume),
}


@pytest.mark.parametrize("name", sorted(FULL))
def test_rolling_frame_one_candle_at_a_time(btc: pd.DataFrame, name: str) -> None:
    """Appending candles one by one and recomputing gives the full-array value at every step."""
    fn = FULL[name]
    full = fn(btc)
    rf = ti.RollingFrame(capacity=len(btc))
    for i, row in enumerate(btc.itertuples(index=False)):
        rf.append(row.open_time, row.open, row.high, row.low, row.close, row.volume)
        if i % 7 == 0 or i == len(btc) - 1:
            last = fn(rf.to_frame())[-1]
            if np.isnan(full[i]):
                assert np.isnan(last)
            else:
                assert last == pytest.approx(full[i], rel=1e-12)


def test_rolling_frame_window_indicators_stay_exact_after_eviction(btc: pd.DataFrame) -> None:
    rf = ti.RollingFrame(capacity=50)
    full_sma, full_cci = ti.sma(btc.close, 20), ti.cci(btc.high, btc.low, btc.close, 20)
    for i, row in enumerate(btc.itertuples(index=False)):
        rf.append(row.open_time, row.open, row.high, row.low, row.close, row.volume)
        if i >= 60:
            f = rf.to_frame()
            assert len(f) == 50
            assert f.open_time.iloc[-1] == row.open_time
            assert ti.sma(f.close, 20)[-1] == pytest.approx(full_sma[i], rel=1e-12)
            assert ti.cci(f.high, f.low, f.close, 20)[-1] == pytest.approx(full_cci[i], rel=1e-9)


def test_rolling_frame_replaces_same_open_time_and_rejects_older() -> None:
    rf = ti.RollingFrame(capacity=3)
    rf.append_candle(
        Candle(
            symbol="X",
            interval="1m",
            open_time=60_000,
            close_time=119_999,
            open=1,
            high=2,
            low=0.5,
            close=1.5,
            volume=10,
            closed=False,
        )
    )
    rf.append(60_000, 1, 3, 0.5, 2.5, 12)
    assert len(rf) == 1 and rf.column("close")[-1] == 2.5
    with pytest.raises(ValueError, match="older"):
        rf.append(0, 1, 1, 1, 1, 1)
    assert rf.to_frame().open_time.dtype == np.int64


def test_o1_streams_match_talib(btc: pd.DataFrame) -> None:
    c, h, lo = btc.close.to_numpy(), btc.high.to_numpy(), btc.low.to_numpy()
    streams = {
        "ema": (ti.EMAStream(12), ti.ema(c, 12), lambda s, i: s.update(c[i])),
        "sma": (ti.SMAStream(20), ti.sma(c, 20), lambda s, i: s.update(c[i])),
        "rsi": (ti.RSIStream(14), ti.rsi(c, 14), lambda s, i: s.update(c[i])),
        "atr": (ti.ATRStream(14), ti.atr(h, lo, c, 14), lambda s, i: s.update(h[i], lo[i], c[i])),
    }
    for name, (stream, want, step) in streams.items():
        got = np.array([step(stream, i) for i in range(len(c))])
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=name)
        m = ~np.isnan(want)
        np.testing.assert_allclose(got[m], want[m], rtol=1e-9, err_msg=name)
