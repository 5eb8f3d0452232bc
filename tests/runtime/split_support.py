"""Helpers of the tests that run `roottrading up --split` as real processes (test_up_split.py, test_ha_split.py):
free ports, the supervisor's output as JSON events, polling waits, a PostgreSQL database and Redis keys of
their own. Why a module: both tests read as their scenario; the process plumbing is shared here."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import pytest

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports_with_replicas(n: int) -> list[int]:
    """n free ports whose replica ports (port + REPLICA_PORT_STEP) are free too: a second instance on a taken
    port would crash-loop and fail the test for a reason of the machine, not of the code."""
    from roottrading.runtime.supervisor import REPLICA_PORT_STEP

    while True:
        ports = free_ports(n)
        if all(_is_free(p + REPLICA_PORT_STEP) for p in ports):
            return ports


class Lines:
    """Collects a process's output lines in a thread, so the test can wait on what it logs."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._t.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line)

    def events(self, name: str) -> list[dict[str, Any]]:
        out = []
        for line in list(self.lines):
            if name in line and line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return [e for e in out if e.get("event") == name]

    def text(self, last: int = 200) -> str:
        return "".join(self.lines[-last:])


def wait_until(cond: Callable[[], Any], timeout: float, what: str, lines: Lines, every: float = 0.25) -> Any:
    """Poll `cond` until it returns something truthy (returned); AssertionError with the output tail after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(every)
    own = "".join(ln for ln in list(lines.lines) if "service started" in ln or "restart_in_s" in ln)
    raise AssertionError(
        f"{what} not seen within {timeout}s; the supervisor said:\n{own}\nlast output:\n{lines.text()}"
    )


def started_pids(lines: Lines) -> dict[str, tuple[int, int]]:
    """The supervisor's children as it last started them: label (trader, trader#1, ...) -> (pid, start count)."""
    out: dict[str, tuple[int, int]] = {}
    for e in lines.events("service started"):
        out[e["service"]] = (int(e["pid"]), int(e["start"]))
    return out


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def pg_database(postgres_url: str, unique: str) -> Iterator[str]:
    """A PostgreSQL database of this test's own (dropped after it), as a DATABASE_URL."""
    name = f"rt_split_{unique}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def drop_keys(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
