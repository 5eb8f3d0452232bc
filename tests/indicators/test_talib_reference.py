"""Our indicators against TA-Lib reference files generated on real Binance data
(tests/fixtures/indicators/talib_generated/, made by the generator script beside them)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import roottrading.indicators as ti

FILES = ["talib_binance_btcusdt_1d.csv.gz", "talib_btcbusd_1m_scaled.csv.gz"]

# reference column -> function computing it from the frame
CASES = {
    "SMA_20": lambda d: ti.sma(d.close, 20),
    "EMA_12": lambda d: ti.ema(d.close, 12),
    "EMA_26": lambda d: ti.ema(d.close, 26),
    "WMA_20": lambda d: ti.wma(d.close, 20),
    "TEMA_20": lambda d: ti.tema(d.close, 20),
    "TRIX_15": lambda d: ti.trix(d.close, 15),
    "RSI_14": lambda d: ti.rsi(d.close, 14),
    "MACD_12_26_9": lambda d: ti.macd(d.close)[0],
    "MACDSIGNAL_12_26_9": lambda d: ti.macd(d.close)[1],
    "MACDHIST_12_26_9": lambda d: ti.macd(d.close)[2],
    "BBANDS_UPPER_20_2": lambda d: ti.bbands(d.close, 20, 2.0)[0],
    "BBANDS_MIDDLE_20_2": lambda d: ti.bbands(d.close, 20, 2.0)[1],
    "BBANDS_LOWER_20_2": lambda d: ti.bbands(d.close, 20, 2.0)[2],
    "STOCH_SLOWK_14_3_3": lambda d: ti.stoch(d.high, d.low, d.close, 14, 3, 3)[0],
    "STOCH_SLOWD_14_3_3": lambda d: ti.stoch(d.high, d.low, d.close, 14, 3, 3)[1],
    "STOCHRSI_FASTK_14_14_3": lambda d: ti.stochrsi(d.close, 14, 14, 3)[0],
    "STOCHRSI_FASTD_14_14_3": lambda d: ti.stochrsi(d.close, 14, 14, 3)[1],
    "TRANGE": lambda d: ti.trange(d.high, d.low, d.close),
    "ATR_14": lambda d: ti.atr(d.high, d.low, d.close, 14),
    "NATR_14": lambda d: ti.natr(d.high, d.low, d.close, 14),
    "ADX_14": lambda d: ti.adx(d.high, d.low, d.close, 14),
    "PLUS_DI_14": lambda d: ti.plus_di(d.high, d.low, d.close, 14),
    "MINUS_DI_14": lambda d: ti.minus_di(d.high, d.low, d.close, 14),
    "CCI_20": lambda d: ti.cci(d.high, d.low, d.close, 20),
    "WILLR_14": lambda d: ti.willr(d.high, d.low, d.close, 14),
    "OBV": lambda d: ti.obv(d.close, d.volume),
    "ROC_10": lambda d: ti.roc(d.close, 10),
    "PPO_12_26": lambda d: ti.ppo(d.close, 12, 26),
    "SAR_0.02_0.2": lambda d: ti.sar(d.high, d.low, 0.02, 0.2),
    "STDDEV_20_1": lambda d: ti.stddev(d.close, 20),
}


@pytest.fixture(scope="module", params=FILES)
def ref(request: pytest.FixtureRequest, fixtures_dir: Path) -> pd.DataFrame:
    return pd.read_csv(fixtures_dir / "indicators" / "talib_generated" / request.param)


def assert_matches(got: np.ndarray, want: np.ndarray, col: str) -> None:
    """Same warm-up (NaN) rows, then 1e-9 relative agreement (absolute floor for values near 0)."""
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{col}: warm-up rows differ")
    m = ~np.isnan(want)
    scale = max(1e-300, float(np.nanmax(np.abs(want))))
    np.testing.assert_allclose(got[m], want[m], rtol=1e-9, atol=1e-12 * scale, err_msg=col)


@pytest.mark.parametrize("col", sorted(CASES))
def test_matches_talib_reference(ref: pd.DataFrame, col: str) -> None:
    assert_matches(CASES[col](ref), ref[col].to_numpy(dtype=np.float64), col)


def test_every_case_has_a_reference_column(fixtures_dir: Path) -> None:
    meta = json.loads((fixtures_dir / "indicators/talib_generated/talib_reference_meta.json").read_text())
    columns = {c for spec in meta["specs"] for c in spec["columns"]}
    assert set(CASES) <= columns


def test_zscore_and_donchian_from_talib_pieces(ref: pd.DataFrame) -> None:
    """Beyond-TA-Lib indicators checked against the reference columns they are built from."""
    c = ref.close.to_numpy()
    z = ti.zscore(c, 20)
    want = (c - ref["SMA_20"].to_numpy()) / ref["STDDEV_20_1"].to_numpy()
    assert_matches(z, want, "zscore")
    up, mid, dn = ti.donchian(ref.high, ref.low, 20)
    i = 500
    assert up[i] == ref.high.iloc[i - 19 : i + 1].max()
    assert dn[i] == ref.low.iloc[i - 19 : i + 1].min()
    assert mid[i] == (up[i] + dn[i]) / 2
    assert np.isnan(up[18]) and not np.isnan(up[19])


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="period must be an integer >= 2"):
        ti.sma(np.arange(10.0), 1)
    with pytest.raises(ValueError, match="one-dimensional"):
        ti.ema(np.ones((3, 3)), 2)
