"""frozen_heap: the run's input is frozen for the block and handed back after; an existing freeze is kept."""

from __future__ import annotations

import gc

import pytest

from roottrading.backtest.gcfreeze import frozen_heap


def _no_freeze() -> None:
    """Start from an unfrozen heap: a replay earlier in this process froze it for good (runtime/heap.py,
    settle_heap in the Host); handing those objects back to the collector is harmless in a test process."""
    gc.unfreeze()


def test_freezes_for_the_block_and_unfreezes_after() -> None:
    _no_freeze()
    keep = [[i] for i in range(1_000)]
    with frozen_heap() as did:
        assert did and gc.get_freeze_count() >= len(keep)
    assert gc.get_freeze_count() == 0


def test_unfreezes_when_the_block_raises() -> None:
    _no_freeze()
    with pytest.raises(RuntimeError), frozen_heap():
        raise RuntimeError("boom")
    assert gc.get_freeze_count() == 0


def test_leaves_a_freeze_it_did_not_make() -> None:
    _no_freeze()
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        with frozen_heap() as did:
            assert not did
        # not unfrozen (that would give 0); not exactly `before` either: frozen objects freed by their
        # refcount meanwhile leave the permanent generation (another thread of the test runner: CI saw -2)
        assert gc.get_freeze_count() >= before * 0.99
    finally:
        gc.unfreeze()


def test_does_nothing_with_the_collector_disabled() -> None:
    _no_freeze()
    gc.disable()
    try:
        with frozen_heap() as did:
            assert not did and gc.get_freeze_count() == 0
    finally:
        gc.enable()
