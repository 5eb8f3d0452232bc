"""Bounded memory for processes that run for months: a set that forgets its oldest members."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class RecentSet(Generic[K]):
    """A set of at most `max_size` members; adding past that forgets the oldest.

    For "have I seen this id?" fast paths in front of a durable check (the store's unique keys): forgetting
    an old id costs one store look-up if it ever comes back, never a duplicate.
    """

    def __init__(self, max_size: int) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be >= 1, got {max_size}")
        self.max_size = max_size
        self._members: OrderedDict[K, None] = OrderedDict()

    def add(self, item: K) -> None:
        self._members[item] = None
        self._members.move_to_end(item)
        if len(self._members) > self.max_size:
            self._members.popitem(last=False)

    def discard(self, item: K) -> None:
        self._members.pop(item, None)

    def __contains__(self, item: object) -> bool:
        return item in self._members

    def __len__(self) -> int:
        return len(self._members)
