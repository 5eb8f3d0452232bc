"""RecentSet: membership with a bound."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roottrading.bounded import RecentSet


@given(st.lists(st.integers(0, 50), max_size=300), st.integers(1, 20))
def test_keeps_exactly_the_most_recently_added(items: list[int], size: int) -> None:
    s: RecentSet[int] = RecentSet(size)
    for x in items:
        s.add(x)
    recent: list[int] = []
    for x in reversed(items):
        if x not in recent:
            recent.append(x)
    assert len(s) == min(size, len(recent))
    assert all(x in s for x in recent[:size])
    assert not any(x in s for x in recent[size:])


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RecentSet(0)
