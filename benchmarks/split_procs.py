"""Processes and scratch resources for benchmarks/split.py: a temporary PostgreSQL database, a unique Redis
prefix (its keys deleted afterwards), and `python -m roottrading service NAME` children started exactly as a
user or `roottrading up --split` starts them, waited for on their /health route and stopped with SIGTERM.

Kept apart from split.py so the measuring code reads as measuring code."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]
ADMIN_PG = "postgresql://postgres@127.0.0.1:5432/test"


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


async def create_database(name: str, admin: str = ADMIN_PG) -> str:
    """CREATE DATABASE name; returns its SQLAlchemy URL (as tests/runtime/test_up_split.py does)."""
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    host = admin.split("@", 1)[1].rsplit("/", 1)[0]
    return f"postgresql+asyncpg://postgres@{host}/{name}"


async def drop_database(name: str, admin: str = ADMIN_PG) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def drop_keys(redis_url: str, prefix: str) -> None:
    r = aioredis.Redis.from_url(redis_url)
    try:
        keys = [k async for k in r.scan_iter(match=f"{prefix}:*", count=1000)]
        for i in range(0, len(keys), 1000):
            await r.delete(*keys[i : i + 1000])
    finally:
        await r.aclose()


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0.0 elsewhere): the work a process did,
    which other processes on a busy host do not inflate much, unlike its wall-clock rate."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Child:
    """One `roottrading service NAME` process, its output kept in a file (read when it fails)."""

    label: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


@dataclass
class Services:
    """Starts service processes with one shared environment; `stop()` ends every one it started."""

    env: dict[str, str]
    workdir: Path
    token: str
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, label: str | None = None) -> Child:
        """Start `roottrading service name` on its port in SERVICE_PORTS (a replica, `label` given: a free one)."""
        label = label or name
        port = json.loads(self.env.get("SERVICE_PORTS", "{}")).get(name) if label == name else None
        port = port or free_ports(1)[0]
        log = self.workdir / f"{label.replace('#', '_')}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "roottrading", "service", name, "--port", str(port)],
                cwd=self.workdir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child = Child(label, port, proc, log)
        self.children.append(child)
        return child

    async def wait_healthy(self, child: Child, timeout: float = 90.0) -> dict[str, object]:
        """Until GET /health answers (the host serves HTTP only after its subscriptions are made)."""
        deadline = time.monotonic() + timeout
        headers = {"Authorization": f"Bearer {self.token}"}
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if child.proc.poll() is not None:
                    raise RuntimeError(f"{child.label} exited ({child.proc.returncode}):\n{child.tail()}")
                try:
                    resp = await client.get(f"http://127.0.0.1:{child.port}/health", headers=headers)
                    if resp.status_code == 200:
                        return dict(resp.json())
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{child.label} not healthy after {timeout}s:\n{child.tail()}")

    async def stop(self, timeout: float = 30.0) -> None:
        for c in self.children:
            if c.proc.poll() is None:
                c.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for c in self.children:
            while c.proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if c.proc.poll() is None:
                c.proc.kill()
                c.proc.wait()
        self.children.clear()


def base_env(
    redis_url: str, prefix: str, database_url: str, data_dir: Path, token: str, **extra: str
) -> dict[str, str]:
    """The environment every child shares: the split-mode variables of docs/split-mode.md."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "BUS_URL": redis_url,
        "BUS_PREFIX": prefix,
        "DATABASE_URL": database_url,
        "DATA_DIR": str(data_dir),
        "API_TOKEN": token,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "WARNING",
        "TRADING_MODE": "demo",
    }
    env.update(extra)
    return env


def service_ports_env(names: list[str]) -> str:
    """SERVICE_PORTS for services that call each other (the coordinator finds the risk service by it)."""
    return json.dumps(dict(zip(names, free_ports(len(names)), strict=True)))
