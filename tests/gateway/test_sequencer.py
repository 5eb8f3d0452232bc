"""CandleSequencer: whatever the arrival order and duplication, releases are the contiguous series, once."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from roottrading.datasets import synthetic_candles
from roottrading.services.gateway.sequencer import CandleSequencer

SERIES = synthetic_candles("BTCUSDT", "1m", 40, seed=1)
STEP = 60_000


@given(st.lists(st.integers(0, len(SERIES) - 1), min_size=1, max_size=150), st.randoms())
@settings(max_examples=200, deadline=None)
def test_any_arrival_order_with_duplicates_releases_a_contiguous_prefix_once(picks: list[int], rnd) -> None:
    seq = CandleSequencer("BTCUSDT", "1m", last=SERIES[0].open_time - STEP)
    released = []
    for i in picks:
        released.extend(seq.offer(SERIES[i]))
    # then a "backfill" of everything, shuffled, must complete the series exactly
    rest = list(SERIES)
    rnd.shuffle(rest)
    for c in rest:
        released.extend(seq.offer(c))
    assert released == SERIES
    assert seq.pending == {} and seq.gap is None
    assert seq.stats.released == len(SERIES)
    assert seq.stats.duplicates == len(picks)  # every offer beyond the first of each candle


def test_gap_is_reported_and_filled() -> None:
    seq = CandleSequencer("BTCUSDT", "1m", last=SERIES[0].open_time - STEP)
    assert seq.offer(SERIES[0]) == [SERIES[0]]
    assert seq.offer(SERIES[3]) == [] and seq.offer(SERIES[2]) == []
    assert seq.gap == (SERIES[1].open_time, SERIES[1].open_time)
    assert seq.offer(SERIES[1]) == SERIES[1:4]
    assert seq.gap is None and seq.stats.gaps_filled == 1 and seq.stats.held_back == 2


def test_first_candle_sets_the_baseline_and_older_ones_are_dropped() -> None:
    seq = CandleSequencer("BTCUSDT", "1m")
    assert seq.offer(SERIES[5]) == [SERIES[5]]
    assert seq.offer(SERIES[4]) == [] and seq.stats.duplicates == 1


def test_misaligned_open_time_is_dropped() -> None:
    import msgspec

    seq = CandleSequencer("BTCUSDT", "1m", last=SERIES[0].open_time - STEP)
    odd = msgspec.structs.replace(SERIES[1], open_time=SERIES[1].open_time + 1)
    assert seq.offer(odd) == [] and seq.stats.misaligned == 1 and not seq.pending


def test_skip_to_declares_a_hole_and_returns_held_candles_for_re_offer() -> None:
    seq = CandleSequencer("BTCUSDT", "1m", last=SERIES[0].open_time - STEP)
    seq.offer(SERIES[0])
    seq.offer(SERIES[6])
    back = seq.skip_to(SERIES[5].open_time)
    assert back == [SERIES[6]] and seq.stats.skipped == 4 and seq.last == SERIES[4].open_time
    assert seq.offer(SERIES[5]) == [SERIES[5]]
    assert seq.offer(back[0]) == [SERIES[6]]
