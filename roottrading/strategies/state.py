"""Per-strategy persistent state: a small key/value document per (strategy, symbol).

Why: a vectorised strategy recomputes everything from candles, but some bookkeeping cannot be recomputed
(how many entries it made today, the level it anchored a grid at, a counter across a restart). A strategy
reads and writes `self.state()` (the evaluated symbol's, dict-like) inside `generate`; the analyzer saves the
document after each evaluation that changed it (table `strategy_state`) and restores it at start, so a
restart continues where it was. Values must be JSON (str, int, float, bool, None, lists and dicts of them);
the document is capped at 64 KB so that a runaway strategy cannot bloat the store. A failed evaluation
(the strategy raised) rolls its changes back: what is saved is what a successful evaluation left.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, MutableMapping
from typing import Any

MAX_STATE_BYTES = 64 * 1024


class StrategyStateError(ValueError):
    """A value that cannot be stored (not JSON) or a document over the size limit."""


class StrategyState(MutableMapping[str, Any]):
    """Dict-like; tracks whether it changed since the last `saved()` (what the analyzer persists)."""

    def __init__(self, doc: dict[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = dict(doc or {})
        self._saved = copy.deepcopy(self._data)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise StrategyStateError(f"state keys are strings, got {type(key).__name__}")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise StrategyStateError(
                f"state[{key!r}] must be JSON (str, number, bool, None, list, dict): {exc}"
            ) from None
        self._data[key] = copy.deepcopy(value)

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"StrategyState({self._data!r})"

    @property
    def changed(self) -> bool:
        return self._data != self._saved

    def snapshot(self) -> dict[str, Any]:
        """The document to store; raises StrategyStateError over the size limit."""
        size = len(json.dumps(self._data, allow_nan=False))
        if size > MAX_STATE_BYTES:
            raise StrategyStateError(f"state document is {size} bytes, over the {MAX_STATE_BYTES} byte limit")
        return copy.deepcopy(self._data)

    def saved(self) -> None:
        """The current content is what the store has (after a save, or a restore)."""
        self._saved = copy.deepcopy(self._data)

    def rollback(self) -> None:
        """Back to the last saved content (the evaluation that changed it failed)."""
        self._data = copy.deepcopy(self._saved)
