"""`roottrading up --split` for real: 12 service processes (two analyzers) on Redis Streams + PostgreSQL against the local
Binance simulator. It trades (a filled cycle through the trader's API), a SIGKILLed service comes back, SIGTERM
stops every process. The coordinator asks the risk service over HTTP with the token, so a trade also proves
that service-to-service call authenticates."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from roottrading.runtime.supervisor import REPLICA_PORT_STEP, SPLIT_PORTS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _free_ports(n: int) -> list[int]:
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


def _free_ports_with_replicas(n: int) -> list[int]:
    """n free ports whose replica ports (port + REPLICA_PORT_STEP) are free too: a second analyzer on a taken
    port would crash-loop and fail the test for a reason of the machine, not of the code."""
    while True:
        ports = _free_ports(n)
        if all(_is_free(p + REPLICA_PORT_STEP) for p in ports):
            return ports


class _Lines:
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


def _wait(cond: Callable[[], Any], timeout: float, what: str, lines: _Lines) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.25)
    own = "".join(ln for ln in list(lines.lines) if "service started" in ln or "restart_in_s" in ln)
    raise AssertionError(
        f"{what} not seen within {timeout}s; the supervisor said:\n{own}\nlast output:\n{lines.text()}"
    )


@pytest.fixture
def pg_database(postgres_url: str, unique: str) -> Iterator[str]:
    import asyncio

    name = f"rt_split_{unique}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _drop_keys(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_split_trades_restarts_a_killed_service_and_stops_on_sigterm(
    redis_url: str, pg_database: str, unique: str, tmp_path: Path
) -> None:
    names = list(SPLIT_PORTS)
    ports = dict(zip(names, _free_ports_with_replicas(len(names)), strict=True))
    fake_port = _free_ports(1)[0]
    base_env = {**os.environ, "PYTHONPATH": str(ROOT), "LOG_FORMAT": "json", "DATA_DIR": str(tmp_path / "data")}
    start_ms = (int(time.time()) - 500 * 60) * 1000  # the simulator's history ends now (docs/split-mode.md)
    fake = subprocess.Popen(
        [sys.executable, "-m", "roottrading", "fake-binance", "--port", str(fake_port), "--start-ms", str(start_ms)],
        cwd=tmp_path,
        env=base_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        **base_env,
        "BUS_URL": redis_url,
        "BUS_PREFIX": f"rt-split-{unique}",
        "DATABASE_URL": pg_database,
        "BINANCE_REST_URL": f"http://127.0.0.1:{fake_port}",
        "BINANCE_WS_URL": f"ws://127.0.0.1:{fake_port}",
        "SYMBOLS": "BTCUSDT,ETHUSDT",
        "SERVICE_PORTS": json.dumps(ports),
        "API_TOKEN": f"split-{unique}",
        # the warm-up's signals trade too: a trade within seconds instead of waiting for a live crossover
        "COORDINATOR_MAX_SIGNAL_AGE_S": "0",
    }
    up = subprocess.Popen(
        # risk and portfolio active/standby: the coordinator is given both risk URLs and trades through the leader
        [sys.executable, "-m", "roottrading", "up", "--split", "--replicas", "analyzer=2,risk=2,portfolio=2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = _Lines(up)
    auth = {"Authorization": f"Bearer split-{unique}"}
    trader = f"http://127.0.0.1:{ports['trader']}"
    pids: set[int] = set()
    try:

        def filled_cycle() -> dict[str, Any] | None:
            try:
                body = httpx.get(f"{trader}/cycles", headers=auth, timeout=2).json()
            except (httpx.HTTPError, ValueError):
                return None
            return next((c for c in body.get("items", []) if c.get("entry_price")), None)

        cycle = _wait(filled_cycle, 150, "a filled cycle", out)
        # a filled entry: the cycle may already be exiting (WAITING_EXIT) when the poll sees it
        assert cycle["status"] in ("ACTIVE", "WAITING_EXIT", "COMPLETED") and cycle["entry_order_id"]

        started = out.events("service started")
        assert {e["service"] for e in started} >= set(names) - {"dispatcher"} | {"analyzer#1", "risk#1", "portfolio#1"}
        assert not out.events("service exited; restarting")  # nothing crashed on its own
        for svc in ("risk", "portfolio"):  # one leader, one standby
            roles = sorted(
                httpx.get(f"http://127.0.0.1:{ports[svc] + 100 * i}/health", headers=auth, timeout=5).json()[
                    "components"
                ][svc]["leadership"]["role"]
                for i in (0, 1)
            )
            assert roles == ["leader", "standby"], (svc, roles)
        pids = {int(e["pid"]) for e in started}
        trader_pid = next(int(e["pid"]) for e in started if e["service"] == "trader")
        os.kill(trader_pid, signal.SIGKILL)
        restarted = _wait(
            lambda: [e for e in out.events("service started") if e["service"] == "trader" and e["start"] == 2],
            90,  # back-off 1 s; a loaded machine is slow to notice and spawn
            "the trader restarted",
            out,
        )
        pids.add(int(restarted[0]["pid"]))
        _wait(lambda: filled_cycle(), 60, "the restarted trader answering", out)
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(timeout=60)
        finally:
            if up.poll() is None:
                up.kill()
            fake.send_signal(signal.SIGTERM)
            fake.wait(timeout=20)
            _drop_keys(redis_url, f"rt-split-{unique}")
    assert up.returncode == 0, out.text()
    assert out.events("every service stopped")[-1]["clean"] is True
    assert not [p for p in pids if _alive(p)]
    assert "Traceback" not in out.text(last=len(out.lines))
