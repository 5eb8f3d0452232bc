"""Bundled datasets: real values match the upstream files; synthetic market is deterministic and sane."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roottrading.datasets import available, load_candles, synthetic_candles
from roottrading.datasets.bundled import DATA_DIR


def test_available_and_bundle_is_small() -> None:
    assert available() == [("BTCBUSD", "1m"), ("BTCUSDT", "1d"), ("BTCUSDT", "1h")]
    total = sum(p.stat().st_size for p in DATA_DIR.iterdir())
    assert total < 1_000_000
    assert (DATA_DIR.parent / "ATTRIBUTION.md").read_text().count("Apache") >= 3


@pytest.mark.parametrize(
    ("symbol", "interval", "n", "step"),
    [("BTCBUSD", "1m", 1440, 60_000), ("BTCUSDT", "1h", 120, 3_600_000), ("BTCUSDT", "1d", 1246, 86_400_000)],
)
def test_bundled_series_are_contiguous(symbol: str, interval: str, n: int, step: int) -> None:
    candles = load_candles(symbol, interval)
    assert len(candles) == n
    assert all(b.open_time - a.open_time == step for a, b in itertools.pairwise(candles))
    assert all(c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high for c in candles)
    assert all(c.closed and c.close_time == c.open_time + step - 1 for c in candles)


def test_known_values() -> None:
    m = load_candles("BTCBUSD", "1m")
    assert (m[0].open_time, m[0].open, m[0].volume) == (1670889600000, 17212.12, 110.66042)  # 2022-12-13
    d = load_candles("BTCUSDT", "1d")
    assert (d[0].open_time, d[0].open) == (1502928000000, 4261.48)  # Binance's first candle 2017-08-17
    assert load_candles("btcbusd", "1m", as_symbol="BTCUSDT")[5].symbol == "BTCUSDT"
    with pytest.raises(ValueError, match="no bundled dataset"):
        load_candles("ETHUSDT", "1m")


def test_daily_matches_basana_after_date_shift(fixtures_dir: Path) -> None:
    """Cross-check with an independent Apache-2.0 source: basana's Binance BTCUSDT 2020 daily closes."""
    by_time = {c.open_time: c for c in load_candles("BTCUSDT", "1d")}
    with open(fixtures_dir / "ohlcv/basana/binance_btcusdt_day_2020.csv") as fh:
        rows = list(csv.DictReader(fh))
    from datetime import UTC, datetime

    matched = 0
    for r in rows:
        t = int(datetime.strptime(r["datetime"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp() * 1000)
        assert by_time[t].close == float(r["close"]), r
        matched += 1
    assert matched == 366


def test_synthetic_is_deterministic_and_independent_per_symbol() -> None:
    a = synthetic_candles("ETHUSDT", "1m", 500, seed=7, start_price=2000)
    assert a == synthetic_candles("ETHUSDT", "1m", 500, seed=7, start_price=2000)
    assert a != synthetic_candles("ETHUSDT", "1m", 500, seed=8, start_price=2000)
    assert [c.close for c in a] != [c.close for c in synthetic_candles("SOLUSDT", "1m", 500, seed=7, start_price=2000)]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32), price=st.floats(0.0001, 100_000), n=st.integers(1, 200))
def test_synthetic_candles_are_valid_and_round_trip_8dp(seed: int, price: float, n: int) -> None:
    cs = synthetic_candles("XUSDT", "5m", n, seed=seed, start_price=price)
    assert len(cs) == n
    for prev, c in zip([None, *cs], cs, strict=False):
        assert c.low <= min(c.open, c.close) and c.high >= max(c.open, c.close) and c.volume >= 0
        assert prev is None or (c.open == prev.close and c.open_time == prev.open_time + 300_000)
        for v in (c.open, c.high, c.low, c.close, c.volume):
            assert float(f"{v:.8f}") == v  # exact through Binance's 8-decimal strings
