"""Statistics at T use history before T only: the no-lookahead guarantee backtests rely on."""

from __future__ import annotations

import itertools
import math

import pytest

from roottrading.datasets import synthetic_candles
from roottrading.universe.config import parse_universe
from roottrading.universe.stats import DAY_MS, Book, compute_stats
from roottrading.universe.timeline import members_at, next_refresh, stats_at, universe_timeline

START = 1_704_067_200_000
HOUR = 3_600_000


def test_stats_values_on_a_known_series() -> None:
    candles = synthetic_candles("AUSDT", "1h", 48, start_ms=START, start_price=10.0)
    at = candles[-1].close_time + 1
    s = compute_stats("AUSDT", candles, at, DAY_MS, book=Book(bid=9.9, ask=10.1, time=at - 5))
    assert s is not None
    window = candles[-24:]
    assert s.candles == 24 and s.last_price == window[-1].close
    assert s.quote_volume == pytest.approx(sum(c.quote_volume for c in window))
    assert s.momentum == pytest.approx(window[-1].close / window[0].open - 1)
    logs = [math.log(b.close / a.close) for a, b in itertools.pairwise(window)]
    mean = sum(logs) / len(logs)
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / (len(logs) - 1))
    assert s.volatility == pytest.approx(sd * math.sqrt(24))
    assert s.spread_pct == pytest.approx(2.0) and s.age_days == pytest.approx(2.0)


def test_a_book_from_the_future_is_ignored() -> None:
    candles = synthetic_candles("AUSDT", "1h", 10, start_ms=START)
    at = candles[5].close_time + 1
    s = compute_stats("AUSDT", candles, at, DAY_MS, book=Book(bid=1, ask=2, time=at + 1))
    assert s is not None and s.spread_pct is None


@pytest.mark.parametrize("cut", [1, 7, 30, 71])
def test_no_lookahead_stats_equal_with_and_without_the_future(cut: int) -> None:
    candles = synthetic_candles("AUSDT", "1h", 72, start_ms=START)
    at = candles[cut].open_time + 1  # mid-candle: the candle `cut` is not closed yet
    full = compute_stats("AUSDT", candles, at, DAY_MS)
    past = compute_stats("AUSDT", candles[:cut], at, DAY_MS)
    assert full == past and full is not None and full.last_price == candles[cut - 1].close


def test_a_symbol_not_listed_yet_does_not_exist() -> None:
    late = synthetic_candles("LATEUSDT", "1h", 10, start_ms=START + 50 * HOUR)
    assert compute_stats("LATEUSDT", late, START + 10 * HOUR, DAY_MS) is None
    assert stats_at({"LATEUSDT": late}, START + 10 * HOUR, DAY_MS) == {}


def test_timeline_is_point_in_time_and_ignores_the_future() -> None:
    """The universe at each refresh is the same whether the data stops there or runs on (no survivorship:
    a symbol listed later appears only once it has candles)."""
    cfg = parse_universe(
        {
            "source": {"type": "volume", "top": 3},
            "refresh": "6h",
            "lookback": "6h",
            "scoring": {"size": 2, "keep_rank": 3, "cooldown": "6h"},
        }
    )
    series = {
        f"S{i}USDT": synthetic_candles(f"S{i}USDT", "1h", 96, start_ms=START, base_volume=10 + i) for i in range(6)
    }
    series["NEWUSDT"] = synthetic_candles("NEWUSDT", "1h", 48, start_ms=START + 48 * HOUR, base_volume=500)
    end = START + 95 * HOUR
    timeline = universe_timeline(cfg, series, START + 6 * HOUR, end)
    assert [s.at for s in timeline][:2] == [START + 6 * HOUR, next_refresh(START + 6 * HOUR, 6 * HOUR)]
    for sel in timeline:
        cut = {s: [c for c in cs if c.close_time < sel.at] for s, cs in series.items()}
        again = universe_timeline(cfg, cut, START + 6 * HOUR, sel.at)
        assert again[-1].members == sel.members
    before = [s.members for s in timeline if s.at < START + 48 * HOUR]
    assert before and all("NEWUSDT" not in m for m in before)
    assert any("NEWUSDT" in s.members for s in timeline)  # by far the largest volume once listed
    assert members_at(timeline, START) == ()
    assert members_at(timeline, timeline[1].at + 1) == timeline[1].members
