from __future__ import annotations

import itertools

import pytest

from roottrading.optimize.space import SpaceError, build_space
from roottrading.optimize.walkforward import DAY_MS, parse_spec, stitch, windows
from roottrading.strategies.builtin.trend import EmaCross


def test_the_space_is_the_strategys_params_without_what_fast_cannot_model() -> None:
    dims = {d.name: d for d in build_space(EmaCross.param_specs(), [])}
    assert {"fast", "slow", "sl_atr", "tp_atr"} <= set(dims)
    assert "trailing_pct" not in dims and "ride_or_react" not in dims
    assert (dims["fast"].low, dims["fast"].high) == (EmaCross.fast.low, EmaCross.fast.high)


def test_space_narrows_pins_and_lists() -> None:
    dims = {d.name: d for d in build_space(EmaCross.param_specs(), ["fast=5:9:2", "slow=30:30", "trailing_pct=0,1.5"])}
    assert dims["fast"].grid() == [5, 7, 9]
    assert dims["slow"].kind == "choice" and dims["slow"].choices == (30,)
    assert dims["trailing_pct"].choices == (0.0, 1.5)


@pytest.mark.parametrize(
    ("item", "msg"),
    [
        ("nope=1:2", "not a parameter"),
        ("fast=9:5", "above HI"),
        ("fast=1.5:4", "not an integer"),
        ("fast=2:1000", "above the maximum"),
        ("fast", "expected KEY"),
    ],
)
def test_bad_space_is_refused_naming_the_key(item: str, msg: str) -> None:
    with pytest.raises(SpaceError, match=msg):
        build_space(EmaCross.param_specs(), [item])


def test_rolling_and_anchored_windows_never_let_a_test_span_overlap_its_training() -> None:
    train, test, step = parse_spec("train=10d,test=5d")
    assert (train, test, step) == (10 * DAY_MS, 5 * DAY_MS, 5 * DAY_MS)
    rolling = windows(0, 30 * DAY_MS, train, test, step)
    assert [(w.train_start // DAY_MS, w.train_end // DAY_MS, w.test_end // DAY_MS) for w in rolling] == [
        (0, 10, 15),
        (5, 15, 20),
        (10, 20, 25),
        (15, 25, 30),
    ]
    anchored = windows(0, 30 * DAY_MS, train, test, step, anchored=True)
    assert all(w.train_start == 0 for w in anchored) and [w.test_start for w in anchored] == [
        w.test_start for w in rolling
    ]
    for w in rolling:
        assert w.train_end <= w.test_start
    # the test spans tile the out-of-sample period without gaps or overlap
    assert all(a.test_end == b.test_start for a, b in itertools.pairwise(rolling))
    with pytest.raises(ValueError, match="shorter than one"):
        windows(0, 12 * DAY_MS, train, test, step)
    with pytest.raises(ValueError, match="train="):
        parse_spec("train=10d,tset=5d")


def test_stitch_adds_each_windows_pnl_to_where_the_last_ended() -> None:
    out = stitch([[(1, 100.0), (2, 110.0)], [(3, 95.0), (4, 105.0)]], 100.0)
    assert out == [(1, 100.0), (2, 110.0), (3, 105.0), (4, 115.0)]
