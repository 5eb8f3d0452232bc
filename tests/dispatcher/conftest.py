"""Fixtures for the NATS bus and dispatcher tests: tuned NATS buses, private broker processes."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from roottrading.bus.base import RetryPolicy
from roottrading.bus.nats import NatsBus

FAST_RETRY = RetryPolicy(max_attempts=3, backoff_s=0.001, backoff_max_s=0.01)
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def make_nats_bus(url: str, prefix: str, **kwargs: object) -> NatsBus:
    """A NATS bus tuned for tests: short fetch waits so close() and hand-overs take milliseconds."""
    opts: dict[str, object] = {"retry": FAST_RETRY, "fetch_timeout_s": 0.05, "publish_timeout_s": 10.0}
    opts.update(kwargs)
    return NatsBus(url, prefix=prefix, **opts)  # type: ignore[arg-type]


@pytest.fixture
async def bus(nats_url: str, unique: str) -> AsyncIterator[NatsBus]:
    """A started NATS bus on a private prefix; its stream is deleted afterwards.

    Named `bus` so the shared contract tests imported into test_nats_bus.py run on NATS unchanged."""
    b = make_nats_bus(nats_url, f"rtt{unique}")
    await b.start()
    try:
        yield b
    finally:
        await b.close()
        cleaner = make_nats_bus(nats_url, b.prefix)
        await cleaner.start()
        await cleaner.delete_stream()
        await cleaner.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"server on port {port} did not come up in {timeout}s")


class PrivateServer:
    """A broker subprocess we own (never the shared system one): start, SIGKILL, restart on the same port/dir."""

    def __init__(self, kind: str, tmp: Path) -> None:
        self.kind, self.dir, self.port = kind, tmp, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}" if self.kind == "nats" else f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if self.kind == "nats":
            cmd = [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.dir)]
        else:
            cmd = [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # SIGKILL: no graceful flush
            self.proc.wait(5)
            self.proc = None

    async def astart(self) -> None:
        await asyncio.to_thread(self.start)


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[PrivateServer]:
    if not Path(NATS_SERVER).exists():
        pytest.skip("nats-server binary not installed")
    srv = PrivateServer("nats", tmp_path / "nats")
    srv.dir.mkdir()
    srv.start()
    try:
        yield srv
    finally:
        srv.kill()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateServer]:
    if not Path(REDIS_SERVER).exists():
        pytest.skip("redis-server binary not installed")
    srv = PrivateServer("redis", tmp_path / "redis")
    srv.dir.mkdir()
    srv.start()
    try:
        yield srv
    finally:
        srv.kill()
