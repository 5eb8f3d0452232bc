"""The pair-trading example of docs/strategies.md runs as written: it loads, fires tagged entries and exits on
two correlated series, and the analyzer live says what offline `signals()` says. (Its backtest and demo
run: tests/backtest/test_docs_examples.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from roottrading.datasets import synthetic_candles
from roottrading.domain import Candle
from roottrading.services.analyzer.engine import AnalyzerEngine, EngineConfig
from roottrading.strategies.loader import load_folder

DOC = Path(__file__).resolve().parents[2] / "docs" / "strategies.md"


def _example() -> str:
    m = re.search(r"```python\n(# my_strategies/eth_btc_ratio\.py\n.*?)```", DOC.read_text(), re.S)
    assert m, "the pair-trading example is missing from docs/strategies.md"
    return m.group(1)


def _pair(n: int) -> tuple[list[Candle], list[Candle]]:
    """ETH follows BTC with a mean-reverting spread, at 5m."""
    eth = synthetic_candles("ETHUSDT", "5m", n, seed=31, start_price=1_500.0)
    noise = synthetic_candles("XUSDT", "5m", n, seed=32, start_price=100.0)
    btc = []
    for e, x in zip(eth, noise, strict=True):
        k = 13.0 * (x.close / 100.0) ** 3  # the spread wanders around 13 (mean-reverting enough here)
        btc.append(
            Candle(
                symbol="BTCUSDT",
                interval="5m",
                open_time=e.open_time,
                close_time=e.close_time,
                open=e.open * k,
                high=e.high * k,
                low=e.low * k,
                close=e.close * k,
                volume=e.volume,
            )
        )
    return btc, eth


def _frame(cs: list[Candle]) -> pd.DataFrame:
    cols = ("open_time", "open", "high", "low", "close", "volume")
    return pd.DataFrame({k: [getattr(c, k) for c in cs] for k in cols})


def test_the_documented_pair_example_runs_live_and_offline_alike(tmp_path: Path) -> None:
    folder = tmp_path / "my_strategies"
    folder.mkdir()
    (folder / "eth_btc_ratio.py").write_text(_example())
    loaded = load_folder(folder, check_bias=False)
    assert not loaded.errors, loaded.errors
    cls = loaded.strategies["eth_btc_ratio"]
    btc, eth = _pair(1500)
    params = {"lookback": 12, "z_in": 1.0}
    sf = cls(**params).signals(_frame(eth), informative={"ETHUSDT": _frame(eth), "BTCUSDT": _frame(btc)})
    fired = np.flatnonzero(sf.side)
    assert (sf.side == 1).sum() >= 2 and (sf.side == -1).sum() >= 2
    assert sf.tag is not None and set(sf.tag[fired]) == {"z<-1", "z>0"}
    eng = AnalyzerEngine(
        EngineConfig(
            interval="5m", strategies_dir=str(folder), enabled=["eth_btc_ratio"], params={"eth_btc_ratio": params}
        )
    )
    live = {}
    for b, e in zip(btc, eth, strict=True):
        eng.inform([b, e])
        live.update({s.id: s for s in eng.on_candle(e).signals})
    assert not eng.last_errors
    offline = {f"eth_btc_ratio:ETHUSDT:5m:{int(sf.open_time[i])}": sf.row(int(i)) for i in fired}
    assert live.keys() == offline.keys()
    assert all(live[k].tag == offline[k]["tag"] for k in live)
