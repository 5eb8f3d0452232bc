"""The only source of "now". Live code reads wall time; backtests and replays move a simulated clock."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...

    async def sleep(self, seconds: float) -> None: ...


class LiveClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class SimClock:
    """Time moves only when the simulation says so (e.g. to each candle's close time)."""

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def set(self, ms: int) -> None:
        if ms < self._now:
            raise ValueError(f"simulated time cannot go back ({ms} < {self._now})")
        self._now = ms

    def advance(self, ms: int) -> None:
        self._now += ms

    async def sleep(self, seconds: float) -> None:
        self._now += int(seconds * 1000)
        await asyncio.sleep(0)
