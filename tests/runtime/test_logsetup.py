"""Console logs: readable on a terminal, JSON otherwise, LOG_FORMAT forces one; noisy libraries held at WARNING."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
import structlog

from roottrading.config import load_settings
from roottrading.runtime.logsetup import THIRD_PARTY_LOGGERS, configure_logging, resolve_format


class _Terminal(io.StringIO):
    """A stream that says it is a terminal, as sys.stderr does when a person runs the command."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put it back for the other tests."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {n: logging.getLogger(n).level for n in THIRD_PARTY_LOGGERS}
    yield
    structlog.configure(**saved)
    for h in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(h)
    root.setLevel(level)
    for n, lv in levels.items():
        logging.getLogger(n).setLevel(lv)


def test_format_is_console_on_a_terminal_json_otherwise_and_forced_when_asked() -> None:
    assert resolve_format("auto", _Terminal()) == "console"
    assert resolve_format("auto", io.StringIO()) == "json"
    assert resolve_format("json", _Terminal()) == "json"
    assert resolve_format("console", io.StringIO()) == "console"


def test_terminal_gets_coloured_readable_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = _Terminal()
    configure_logging("INFO", "auto", stream=out)
    structlog.get_logger("t").info("order placed", order="rt1")
    line = out.getvalue().strip()
    assert "order placed" in line and "order" in line and "rt1" in line
    assert "\x1b[" in line, "colours on a terminal"
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_pipe_gets_json_and_forced_console_has_no_colour_codes() -> None:
    piped = io.StringIO()
    configure_logging("INFO", "auto", stream=piped)
    structlog.get_logger("t").info("order placed", order="rt1")
    rec = json.loads(piped.getvalue().strip())
    assert rec["event"] == "order placed" and rec["order"] == "rt1" and rec["level"] == "info"

    forced = io.StringIO()
    configure_logging("INFO", "console", stream=forced)
    structlog.get_logger("t").info("order placed", order="rt1")
    text = forced.getvalue()
    assert "order placed" in text and "\x1b[" not in text


def _httpx_request() -> None:
    with httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200)), base_url="http://x") as c:
        c.get("/api/v3/ping")


def test_httpx_info_is_not_emitted_at_the_default_level() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    _httpx_request()
    assert "HTTP Request" not in out.getvalue()
    logging.getLogger("httpx").warning("server slow")
    rec = json.loads(out.getvalue().strip())  # a library's warning still shows, in the same JSON format
    assert rec["event"] == "server slow" and rec["level"] == "warning" and rec["logger"] == "httpx"


def test_debug_level_shows_third_party_logs() -> None:
    out = io.StringIO()
    configure_logging("DEBUG", "json", stream=out)
    _httpx_request()
    assert "HTTP Request: GET http://x/api/v3/ping" in out.getvalue()


def test_log_format_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOG_JSON", raising=False)
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    s = load_settings()
    assert s.effective_log_format == "json" and s.log_level == "DEBUG"
    monkeypatch.delenv("LOG_FORMAT")
    assert load_settings().effective_log_format == "auto"
    monkeypatch.setenv("LOG_JSON", "false")  # the older variable still works when LOG_FORMAT is not set
    assert load_settings().effective_log_format == "console"


async def test_a_second_attach_takes_the_bus_log_sink_over_and_every_line_goes_out_once() -> None:
    """Two Hosts in one process attach the one sink in turn (CI: two analyzers). Before, each attach started a
    pump of its own on the same queue: lines went out twice and a pump popped an empty queue (IndexError)."""
    import asyncio

    from roottrading.clock import SimClock
    from roottrading.runtime.logsetup import BusLogSink

    class SlowBus:
        def __init__(self) -> None:
            self.sent: list[str] = []

        async def publish(self, topic: str, rec: object, key: str = "") -> None:
            await asyncio.sleep(0.001)  # a real publish awaits: the other pump would run meanwhile
            self.sent.append(rec.event)  # type: ignore[attr-defined]

    sink = BusLogSink()
    first, second = SlowBus(), SlowBus()
    sink.attach(first, SimClock(0))  # type: ignore[arg-type]
    for i in range(20):
        sink(None, "info", {"event": f"a{i}", "service": "x"})
    sink.attach(second, SimClock(0))  # type: ignore[arg-type]
    await asyncio.sleep(0.002)  # a pump is publishing now
    for i in range(20):  # these wake every pump waiting, while one is mid-publish
        sink(None, "info", {"event": f"b{i}", "service": "x"})
        await asyncio.sleep(0)
    for _ in range(500):
        if not sink.queue:
            break
        await asyncio.sleep(0.005)
    task = sink._task
    await sink.detach()
    assert task is not None and task.cancelled()  # stopped by detach, not by an exception
    sent = first.sent + second.sent
    assert sorted(sent) == sorted([f"a{i}" for i in range(20)] + [f"b{i}" for i in range(20)])  # once each
