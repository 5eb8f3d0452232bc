"""structlog JSON logs, and every service's log lines also on the bus (`logs.<level>`).

The bus sink never blocks the code that logs: lines go into a bounded queue that a task publishes.
If the queue is full (bus down for long), the oldest lines are dropped and counted, never the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import deque
from typing import Any

import structlog
from structlog.typing import EventDict

from roottrading import messages as m
from roottrading.bus.base import MessageBus
from roottrading.clock import Clock

_SECRET_KEYS = ("secret", "password", "token", "api_key", "apikey", "signature")


def _redact(_: Any, __: str, event_dict: EventDict) -> EventDict:
    """Last line of defence: any field whose name looks secret is masked before output."""
    for k in list(event_dict):
        if any(s in k.lower() for s in _SECRET_KEYS):
            event_dict[k] = "**********"
    return event_dict


class BusLogSink:
    """A structlog processor that copies each event to the bus."""

    def __init__(self, maxlen: int = 10_000, min_level: int = logging.INFO) -> None:
        self.queue: deque[m.LogRecord] = deque(maxlen=maxlen)
        self.min_level = min_level
        self.dropped = 0
        self.bus: MessageBus | None = None
        self.clock: Clock | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def __call__(self, _: Any, method: str, event_dict: EventDict) -> EventDict:
        level = event_dict.get("level", method).lower()
        if self.bus is None or logging.getLevelName(level.upper()) < self.min_level:
            return event_dict
        if len(self.queue) == self.queue.maxlen:
            self.dropped += 1
        ctx = {
            k: v if isinstance(v, (str, int, float, bool, type(None))) else str(v)
            for k, v in event_dict.items()
            if k not in ("event", "level", "timestamp", "service")
        }
        self.queue.append(
            m.LogRecord(
                time=self.clock.now_ms() if self.clock else 0,
                level=level,
                service=str(event_dict.get("service", event_dict.get("logger", "?"))),
                event=str(event_dict.get("event", "")),
                context=ctx,
            )
        )
        self._wake.set()
        return event_dict

    def attach(self, bus: MessageBus, clock: Clock) -> None:
        self.bus, self.clock = bus, clock
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._pump(), name="log-sink")

    async def _pump(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.queue and self.bus is not None:
                rec = self.queue[0]
                try:
                    await self.bus.publish(m.logs_topic(rec.level), rec, key=rec.service)
                except (ConnectionError, OSError, RuntimeError):
                    await asyncio.sleep(0.5)  # bus unavailable: keep the line, try again
                    continue
                self.queue.popleft()

    async def detach(self) -> None:
        if self._task:
            self._wake.set()
            await asyncio.sleep(0)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.bus = None


SINK = BusLogSink()


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=getattr(logging, level.upper(), 20))
    for noisy in ("uvicorn.access", "aiosqlite", "asyncio", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            SINK,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), 20)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
