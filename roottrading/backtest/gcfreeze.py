"""Keep the garbage collector off the run's input while a backtest runs.

Why: a year of 1m candles is ~2 million long-lived Python objects (`Candle` structs and their fields), and
every full collection the run's own allocations trigger walks all of them again: ~15 % of a fast run's CPU
time on 200,000 candles (benchmarks/backtest.py). `gc.freeze()` moves what exists at the start into the
permanent generation, which collections skip; `gc.unfreeze()` at the end hands it back, so nothing is leaked:
a cycle among those objects that became garbage meanwhile is collected after the run. If the process had
frozen objects already (a service process does: runtime/heap.settle_heap, e.g. after a replay run), it is left
alone: unfreezing would undo its freeze.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def frozen_heap() -> Iterator[bool]:
    """Freeze the heap for the block (yields whether it did)."""
    if gc.get_freeze_count() or not gc.isenabled():
        yield False
        return
    gc.freeze()
    try:
        yield True
    finally:
        gc.unfreeze()
