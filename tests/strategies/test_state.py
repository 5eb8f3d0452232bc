"""Per-strategy state (issue 19): a dict-like JSON document that knows when it changed."""

from __future__ import annotations

import numpy as np
import pytest

from roottrading.strategies.base import BaseStrategy
from roottrading.strategies.state import MAX_STATE_BYTES, StrategyState, StrategyStateError


def test_changes_are_tracked_saved_and_rolled_back() -> None:
    st = StrategyState({"n": 1})
    assert not st.changed and dict(st) == {"n": 1}
    st["n"] = 2
    st["levels"] = [1.5, 2.5]
    assert st.changed
    assert st.snapshot() == {"n": 2, "levels": [1.5, 2.5]}
    st.saved()
    assert not st.changed
    st["levels"].append(3.5)  # a copy was stored: mutating the caller's object is not a hidden change
    del st["n"]
    assert st.changed
    st.rollback()
    assert dict(st) == {"n": 2, "levels": [1.5, 2.5]} and not st.changed


def test_only_json_values_and_a_bounded_document() -> None:
    st = StrategyState()
    with pytest.raises(StrategyStateError, match="JSON"):
        st["x"] = np.float64("nan")
    with pytest.raises(StrategyStateError, match="JSON"):
        st["x"] = object()
    with pytest.raises(StrategyStateError, match="strings"):
        st[1] = 2  # type: ignore[index]
    st["big"] = "x" * MAX_STATE_BYTES
    with pytest.raises(StrategyStateError, match="limit"):
        st.snapshot()


def test_strategy_state_defaults_to_the_evaluated_symbol() -> None:
    s = BaseStrategy()
    s._symbol = "ETHUSDT"
    s.state()["a"] = 1
    assert s.state("ETHUSDT")["a"] == 1 and "a" not in s.state("BTCUSDT")
    shared = StrategyState({"b": 2})
    s.bind_state("BTCUSDT", shared)
    assert s.state("BTCUSDT") is shared
