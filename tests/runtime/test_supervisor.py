"""`up --split` planning and the supervisor's restart / stop policy, on small stand-in children."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roottrading.cli import app
from roottrading.config import load_settings
from roottrading.runtime import supervisor as sup


def test_replicas_are_parsed_and_refused_where_unsafe() -> None:
    assert sup.parse_replicas("analyzer=2, trader=1") == {"analyzer": 2, "trader": 1}
    assert sup.parse_replicas(None) == {}
    for single in ("gateway", "scheduler"):
        with pytest.raises(sup.SplitConfigError, match=rf"{single}=2: {single} runs once per platform"):
            sup.parse_replicas(f"{single}=2")
    # risk and portfolio: active/standby on a leader lease in Redis
    assert sup.parse_replicas("risk=2,portfolio=2", "redis://127.0.0.1:6379/0") == {"risk": 2, "portfolio": 2}
    for standby in ("risk", "portfolio"):
        with pytest.raises(sup.SplitConfigError, match=rf"several {standby} instances need BUS_URL=redis"):
            sup.parse_replicas(f"{standby}=2", "nats://127.0.0.1:4222")
    # traders and coordinators own the symbols of the Redis partitions they lease: Redis only
    assert sup.parse_replicas("trader=2,coordinator=2", "redis://127.0.0.1:6379/0") == {"trader": 2, "coordinator": 2}
    demo = load_settings(trading_mode="demo")
    assert "TRADING_MODE=live" in (sup.replicas_problem(demo, {"trader": 2}) or "")
    assert sup.replicas_problem(demo, {"coordinator": 2, "trader": 1}) is None
    for owned in ("trader", "coordinator"):
        with pytest.raises(sup.SplitConfigError, match=rf"several {owned}s need BUS_URL=redis"):
            sup.parse_replicas(f"{owned}=2", "nats://127.0.0.1:4222")
    with pytest.raises(sup.SplitConfigError, match="NAME=COUNT"):
        sup.parse_replicas("analyzer:2")
    with pytest.raises(sup.SplitConfigError, match="NAME=COUNT"):
        sup.parse_replicas("analyzer=0")
    with pytest.raises(sup.SplitConfigError, match="unknown service 'nope'"):
        sup.parse_replicas("nope=1")


def test_plan_puts_each_service_on_its_port_and_replicas_beside_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    specs = sup.plan(load_settings(), {"analyzer": 2})
    ports = {s.label: s.port for s in specs}
    assert ports["portfolio"] == 8000 and ports["trader"] == 5002 and ports["risk"] == 5007
    assert ports["analyzer"] == 5001 and ports["analyzer#1"] == 5001 + sup.REPLICA_PORT_STEP
    assert len(set(ports.values())) == len(ports)  # no two processes on one port
    assert [s.name for s in specs][-1] == "gateway"  # the market-data producer starts last


def test_plan_gives_the_coordinators_every_risk_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(sup.RISK_URL_ENV, raising=False)
    specs = {s.label: s for s in sup.plan(load_settings(), {"risk": 2, "coordinator": 2})}
    urls = f"http://127.0.0.1:5007,http://127.0.0.1:{5007 + sup.REPLICA_PORT_STEP}"
    assert dict(specs["coordinator"].env) == dict(specs["coordinator#1"].env) == {sup.RISK_URL_ENV: urls}
    assert specs["risk"].env == specs["risk#1"].env == ()
    assert all(s.env == () for s in sup.plan(load_settings(), {"coordinator": 2}))  # one risk: its default port
    monkeypatch.setenv(sup.RISK_URL_ENV, "http://risk-a:5007,http://risk-b:5007")  # the user's URLs win
    assert all(s.env == () for s in sup.plan(load_settings(), {"risk": 2}))


def test_split_refuses_the_embedded_defaults_naming_the_urls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("BUS_URL", "DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    result = CliRunner().invoke(app, ["up", "--split"])
    assert result.exit_code == 2
    assert "BUS_URL=redis://" in result.output and "DATABASE_URL=postgresql" in result.output
    monkeypatch.setenv("BUS_URL", "redis://127.0.0.1:6379/0")
    result = CliRunner().invoke(app, ["up", "--split"])
    assert result.exit_code == 2 and "DATABASE_URL=postgresql" in result.output and "BUS_URL=" not in result.output


def test_split_refuses_replicas_of_a_stateful_service(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BUS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u@127.0.0.1/x")
    result = CliRunner().invoke(app, ["up", "--split", "--replicas", "gateway=2"])
    assert result.exit_code == 2 and "gateway runs once per platform" in result.output
    monkeypatch.setenv("TRADING_MODE", "demo")
    result = CliRunner().invoke(app, ["up", "--split", "--replicas", "trader=2"])
    assert result.exit_code == 2 and "several traders share one exchange account" in result.output
    result = CliRunner().invoke(app, ["up", "--replicas", "analyzer=2"])
    assert result.exit_code == 2 and "--replicas needs --split" in result.output


@dataclass(frozen=True)
class _Script(sup.ChildSpec):
    """A stand-in child: a tiny Python script instead of a whole service."""

    code: str = ""

    def argv(self) -> list[str]:
        return [sys.executable, "-c", self.code]


_SLEEPER = "import time\nwhile True: time.sleep(0.05)"


async def _until(cond: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_killed_child_is_restarted_and_stop_waits_for_all() -> None:
    specs = [_Script("a", 0, 1, code=_SLEEPER), _Script("b", 0, 2, code=_SLEEPER)]
    s = sup.Supervisor(specs, backoff_initial_s=0.1, stop_grace_s=10)
    run = asyncio.create_task(s.run())
    a, b = s.children
    await _until(lambda: a.proc is not None and b.proc is not None)
    first = a.proc.pid  # type: ignore[union-attr]
    os.kill(first, signal.SIGKILL)
    await _until(lambda: a.starts == 2 and a.proc is not None and a.proc.pid != first)
    assert b.starts == 1  # the others are left alone
    procs = [a.proc, b.proc]
    s.request_stop()
    assert await asyncio.wait_for(run, 15) == 0
    assert all(p is not None and p.returncode == -signal.SIGTERM for p in procs)


async def test_a_crash_loop_backs_off_exponentially() -> None:
    s = sup.Supervisor([_Script("crash", 0, 1, code="raise SystemExit(3)")], backoff_initial_s=0.1, backoff_max_s=10)
    run = asyncio.create_task(s.run())
    await asyncio.sleep(1.2)  # delays 0.1, 0.2, 0.4, 0.8: at most 4-5 starts; without back-off, dozens
    starts = s.children[0].starts
    s.request_stop()
    assert await asyncio.wait_for(run, 10) == 0
    assert 2 <= starts <= 5, starts


async def test_a_child_ignoring_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    ready = tmp_path / "ignoring"  # the child says when its handler is installed
    stubborn = (
        "import pathlib, signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"pathlib.Path({str(ready)!r}).touch()\nwhile True: time.sleep(0.05)"
    )
    s = sup.Supervisor([_Script("stubborn", 0, 1, code=stubborn)], stop_grace_s=0.5)
    run = asyncio.create_task(s.run())
    await _until(lambda: s.children[0].proc is not None and ready.exists())
    s.request_stop()
    assert await asyncio.wait_for(run, 10) == 1  # not a clean stop: said so by the exit code
    assert s.children[0].proc.returncode == -signal.SIGKILL  # type: ignore[union-attr]


async def test_children_output_is_relayed_whole_lines_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines longer than a pipe's atomic write (4 KiB), written by two children at once, come out whole: a
    shared pipe would split them around each other's (a CI run lost a "service started" event that way)."""
    import io

    sink = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stderr", sink)
    writer = "import sys\nfor _ in range(200): sys.stdout.write({!r} * 20000 + '\\n'); sys.stdout.flush()"
    specs = [_Script("a", 0, 1, code=writer.format("A")), _Script("b", 0, 2, code=writer.format("B"))]
    s = sup.Supervisor(specs, backoff_initial_s=30)
    run = asyncio.create_task(s.run())
    await _until(
        lambda: all(c.starts == 1 and c.proc is not None and c.proc.returncode is not None for c in s.children)
    )
    s.request_stop()
    assert await asyncio.wait_for(run, 15) == 0
    sink.flush()
    lines = sink.buffer.getvalue().decode().splitlines()
    relayed = [ln for ln in lines if not ln.startswith(("{", "20"))]  # the supervisor's own events aside
    assert sorted(set(relayed)) == ["A" * 20000, "B" * 20000]
    assert relayed.count("A" * 20000) == relayed.count("B" * 20000) == 200
