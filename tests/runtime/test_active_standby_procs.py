"""Issue 18: two `roottrading service risk` processes on Redis + PostgreSQL, as a user (or `up --split --replicas
risk=2`) runs them. The leader is SIGKILLed after the kill switch was pulled: the standby leads within the lease
(RedisBus lease_ms, 10 s) and still refuses every entry; before that it answered /check with 503 naming the
leader, as the coordinator's risk client expects."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "standby-token-" + "x" * 20
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LEASE_S = 10.0  # RedisBus default lease_ms, as the service processes use it
ENTRY = {"id": "e1", "symbol": "BTCUSDT", "side": "BUY", "quantity": "0.001", "price": "100", "strategy": "ema"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def pg_database(postgres_url: str, unique: str) -> Iterator[str]:
    name = f"rt_standby_{unique}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class Risk:
    def __init__(self, tmp: Path, name: str, env: dict[str, str]) -> None:
        self.name, self.port, self.log = name, free_port(), tmp / f"{name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "roottrading", "service", "risk", "--port", str(self.port)],
            cwd=tmp,
            env={**env, "ROOTTRADING_INSTANCE": name},
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def role(self) -> str | None:
        try:
            r = httpx.get(self.url("/health"), headers=AUTH, timeout=1.0)
        except httpx.TransportError:
            return None
        comp: dict[str, Any] = r.json().get("components", {}).get("risk", {}) if r.status_code == 200 else {}
        lead = comp.get("leadership") or comp.get("details", {}).get("leadership") or {}
        role: str | None = lead.get("role")
        return role

    def check(self, i: str) -> httpx.Response:
        return httpx.post(self.url("/check"), json={**ENTRY, "id": i}, headers=AUTH, timeout=5.0)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_for(cond: Any, timeout: float, what: str, logs: list[Risk]) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            tails = {r.name: r.log.read_text(errors="replace")[-2000:] for r in logs}
            raise AssertionError(f"{what} not met within {timeout} s: {tails}")
        time.sleep(0.05)
    return time.monotonic() - t0


def test_sigkilled_risk_leader_is_replaced_and_the_kill_switch_holds(
    tmp_path: Path, redis_url: str, pg_database: str, unique: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BINANCE_", "BUS_", "DATABASE_"))}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "TRADING_MODE": "demo",
            "SYMBOLS": "BTCUSDT",
            "BUS_URL": redis_url,
            "BUS_PREFIX": f"sbp{unique}",
            "DATABASE_URL": pg_database,
            "DATA_DIR": str(tmp_path),
            "API_TOKEN": TOKEN,
            "ROOTTRADING_CONFIG": str(tmp_path / "none.yaml"),
        }
    )
    subprocess.run([sys.executable, "-m", "roottrading", "migrate"], cwd=tmp_path, env=env, check=True, timeout=120)
    a = Risk(tmp_path, "risk-a", env)
    procs = [a]
    try:
        wait_for(lambda: a.role() == "leader", 60, "risk-a leads", procs)
        b = Risk(tmp_path, "risk-b", env)
        procs.append(b)
        wait_for(lambda: b.role() == "standby", 60, "risk-b stands by", procs)
        assert a.check("e0").json()["allowed"] is True
        refused = b.check("e1")
        assert refused.status_code == 503 and refused.json()["leader"].startswith("risk-a/")

        assert httpx.post(a.url("/kill-switch"), headers=AUTH, timeout=5).json()["killed"] is True
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(10)
        took = wait_for(lambda: b.role() == "leader", LEASE_S + 10, "risk-b took over", procs)
        assert took < LEASE_S + 3, f"takeover took {took:.1f} s for a {LEASE_S} s lease"
        decision = b.check("e2").json()
        assert decision["allowed"] is False, decision  # the stored kill switch, reloaded on takeover
        state = httpx.get(b.url("/state"), headers=AUTH, timeout=5).json()
        assert state["killed"] is True
    finally:
        for r in procs:
            r.stop()
