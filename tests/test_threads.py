"""Background executors lower only their own thread's CPU priority (roottrading/threads.py)."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from roottrading.threads import background_executor


def _nice_of_this_thread() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priority is Linux-only")
def test_background_executor_thread_is_nicer_and_the_caller_is_not() -> None:
    before = _nice_of_this_thread()
    pool = background_executor("t", nice=5)
    try:
        worker = pool.submit(_nice_of_this_thread).result(5)
    finally:
        pool.shutdown(wait=True)
    assert worker == min(19, before + 5)
    assert _nice_of_this_thread() == before  # the calling thread (the event loop's) keeps its priority
