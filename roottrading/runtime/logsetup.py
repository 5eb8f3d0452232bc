"""structlog logs (readable and coloured on a terminal, JSON otherwise), and every service's log lines also on
the bus (`logs.<level>`).

Why auto: a person at a terminal reads lines, a log collector parses JSON; `LOG_FORMAT=json|console` forces one.
Third-party libraries (httpx logs every request at INFO) are held at WARNING unless `LOG_LEVEL=DEBUG`, and their
lines go through the same renderer so one output never mixes two formats.

The bus sink never blocks the code that logs: lines go into a bounded queue that a task publishes.
If the queue is full (bus down for long), the oldest lines are dropped and counted, never the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections import deque
from typing import Any, Literal, TextIO

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
        """Copy events to `bus` from now on. One pump at a time: a second Host in the process (tests, two
        analyzers) takes the sink over; two pumps on one queue published lines twice and popped an empty one."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self.bus, self.clock = bus, clock
        self._wake = asyncio.Event()
        self._wake.set()  # lines queued before this attach go out too
        self._task = asyncio.create_task(self._pump(), name="log-sink")

    async def _pump(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.queue and self.bus is not None:
                # taken off before the await: the queue may change meanwhile (a full queue drops its oldest)
                rec = self.queue.popleft()
                try:
                    await self.bus.publish(m.logs_topic(rec.level), rec, key=rec.service)
                except (ConnectionError, OSError, RuntimeError):
                    self.queue.appendleft(rec)  # bus unavailable: keep the line, try again
                    await asyncio.sleep(0.5)
                    continue
                except asyncio.CancelledError:
                    self.queue.appendleft(rec)  # handed over to the next pump (attach) or kept (detach)
                    raise

    async def detach(self) -> None:
        if self._task:
            self._wake.set()
            await asyncio.sleep(0)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.bus = None


SINK = BusLogSink()


LogFormat = Literal["auto", "json", "console"]

# Loggers of libraries we use, quiet (WARNING) unless LOG_LEVEL=DEBUG: they log per request or per frame at INFO.
THIRD_PARTY_LOGGERS = (
    "httpx",
    "httpcore",
    "hpack",
    "uvicorn",
    "uvicorn.access",
    "uvicorn.error",
    "asyncio",
    "websockets",
    "aiohttp",
    "aiosqlite",
    "asyncpg",
    "sqlalchemy",
    "alembic",
    "redis",
    "nats",
    "ccxt",
    "urllib3",
    "multipart",
    "watchfiles",
)


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def resolve_format(fmt: LogFormat, stream: TextIO) -> Literal["json", "console"]:
    """`auto` is console on a terminal, JSON otherwise (pipes, files, containers, log collectors)."""
    if fmt == "auto":
        return "console" if _is_tty(stream) else "json"
    return fmt


def _renderer(fmt: Literal["json", "console"], stream: TextIO) -> Any:
    if fmt == "json":
        return structlog.processors.JSONRenderer()
    colors = _is_tty(stream) and "NO_COLOR" not in os.environ  # no escape codes in a file or a pipe
    # show_locals=False: a traceback's local variables can hold keys or tokens, never print them.
    return structlog.dev.ConsoleRenderer(
        colors=colors,
        exception_formatter=structlog.dev.RichTracebackFormatter(
            show_locals=False, color_system="truecolor" if colors else None
        ),
    )


class _StdlibHandler(logging.StreamHandler):
    """Our handler on the root logger, told apart so that configuring again replaces it (not pytest's)."""


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is at the time of the write, not the object it was when logging was
    configured: a replaced stderr (a test runner's capture, a closed pipe) must never break logging later."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()

    def fileno(self) -> int:
        return sys.stderr.fileno()


def configure_logging(level: str = "INFO", fmt: LogFormat = "auto", *, stream: TextIO | None = None) -> None:
    """Configure structlog and the standard library's logging for the whole process; safe to call again."""
    out: Any = stream if stream is not None else _CurrentStderr()
    num = getattr(logging, level.upper(), logging.INFO)
    chosen = resolve_format(fmt, out)
    renderer = _renderer(chosen, out)
    shared: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    tail: list[Any] = [structlog.processors.format_exc_info] if chosen == "json" else []

    root = logging.getLogger()
    for h in [h for h in root.handlers if isinstance(h, _StdlibHandler)]:
        root.removeHandler(h)
    handler = _StdlibHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root.addHandler(handler)
    root.setLevel(num)
    third_party = logging.DEBUG if num <= logging.DEBUG else logging.WARNING
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(third_party)

    chain: list[Any] = [structlog.contextvars.merge_contextvars, *shared, SINK, *tail, renderer]
    structlog.configure(
        processors=chain,
        wrapper_class=structlog.make_filtering_bound_logger(num),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
