"""Bars.views (the fast backtest's per-candle constructor) builds the same object as Bars(...)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from roottrading.strategies.bars import Bars


def test_views_equals_the_dataclass_constructor() -> None:
    t = np.arange(10, dtype=np.int64)
    cols = [np.linspace(1.0, 2.0, 10) + k for k in range(5)]
    a = Bars(t, *cols)
    b = Bars.views(t, *cols)
    assert type(b) is Bars
    for f in dataclasses.fields(Bars):
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if isinstance(va, np.ndarray):
            assert vb is va or np.array_equal(vb, va)
        else:
            assert vb == va  # the memos: empty dicts, one per object
    assert b.cache is not Bars.views(t, *cols).cache
    assert len(b) == 10 and b.cached("k", lambda: cols[0]) is cols[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.close = cols[0]  # type: ignore[misc]
