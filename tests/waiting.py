"""Wait for a condition instead of sleeping a guessed time: a fixed sleep is too short on a loaded machine
(a flaky failure) and too long everywhere else (a slow suite)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(cond: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    """Return as soon as `cond()` is truthy (checked every 5 ms); fail naming `what` after `timeout` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, f"{what} not met within {timeout} s"
        await asyncio.sleep(0.005)
