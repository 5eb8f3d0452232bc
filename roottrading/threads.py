"""Background threads that yield the CPU to the event loop.

Why: the event loop thread carries the latency-critical work (a market frame to the bus, a signal to an
order). Persistence that can run a moment later (the gateway's write-behind candle writer, WAL checkpoints)
runs in worker threads; while SQLite works they release the GIL, so they compete with the loop only for a
CPU. On a small machine that competition was the gateway's latency tail: at 20 000 closed candles/s on 2
cores, p99 1.2-1.4 ms with the workers at normal priority, 0.5-0.8 ms with them at nice 10
(benchmarks/gateway.py). A lower priority does not starve them when a CPU is free; when none is, the loop
goes first and the writer's bounded backlog (`max_unstored`) pushes back on publishing.

Linux applies `setpriority` to a single thread when given its thread id; elsewhere this is a no-op. A
process may always lower its own priority but may need privileges to raise it again, so only threads that
do nothing but background work are lowered (their own executors, never the shared default one).
"""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import structlog

log = structlog.get_logger(__name__)

BACKGROUND_NICE = 10


def lower_this_thread(nice: int = BACKGROUND_NICE) -> bool:
    """Give the calling thread a lower CPU priority (a nice value `nice` above the process's). Returns
    whether it took effect."""
    if not sys.platform.startswith("linux"):
        return False
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError as exc:  # e.g. a sandbox forbidding it: the thread keeps working at normal priority
        log.warning(
            "could not lower a background thread's priority", thread=threading.current_thread().name, error=str(exc)
        )
        return False
    return True


def background_executor(name: str, nice: int = BACKGROUND_NICE) -> ThreadPoolExecutor:
    """A one-thread executor whose thread runs at a lower CPU priority (see the module docstring)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=name, initializer=lower_this_thread, initargs=(nice,))
