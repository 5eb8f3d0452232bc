"""Issue 18: two `roottrading service risk` processes on Redis + PostgreSQL, as a user (or `up --split --replicas
risk=2`) runs them. The leader is SIGKILLed after the kill switch was pulled: the standby leads within the lease
(RedisBus lease_ms, 10 s) and still refuses every entry; before that it answered /check with 503 naming the
leader, as the coordinator's risk client expects. The same for two portfolio processes: a reservation whose
cycle finished is settled by the new leader, once."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from roottrading.capital.ledger import PocketLedger
from roottrading.clock import SimClock
from roottrading.config import load_settings
from roottrading.domain import CycleStatus, Side, TradeCycle
from roottrading.store import CycleRepo, Database

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


class Proc:
    """One `roottrading service <service>` process."""

    def __init__(self, tmp: Path, name: str, env: dict[str, str], service: str = "risk") -> None:
        self.name, self.service, self.port, self.log = name, service, free_port(), tmp / f"{name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "roottrading", "service", service, "--port", str(self.port)],
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
        comp: dict[str, Any] = r.json().get("components", {}).get(self.service, {}) if r.status_code == 200 else {}
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


def wait_for(cond: Any, timeout: float, what: str, logs: list[Proc]) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            tails = {r.name: r.log.read_text(errors="replace")[-2000:] for r in logs}
            raise AssertionError(f"{what} not met within {timeout} s: {tails}")
        time.sleep(0.05)
    return time.monotonic() - t0


def service_env(tmp_path: Path, redis_url: str, pg_database: str, unique: str) -> dict[str, str]:
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
            "PORTFOLIO_RECONCILE_S": "3600",
            "PORTFOLIO_REALLOCATE_S": "3600",
        }
    )
    subprocess.run([sys.executable, "-m", "roottrading", "migrate"], cwd=tmp_path, env=env, check=True, timeout=120)
    return env


def test_sigkilled_risk_leader_is_replaced_and_the_kill_switch_holds(
    tmp_path: Path, redis_url: str, pg_database: str, unique: str
) -> None:
    env = service_env(tmp_path, redis_url, pg_database, unique)
    a = Proc(tmp_path, "risk-a", env)
    procs = [a]
    try:
        wait_for(lambda: a.role() == "leader", 60, "risk-a leads", procs)
        b = Proc(tmp_path, "risk-b", env)
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


async def reservation_of_a_finished_cycle(dsn: str, reservation: str, cycle: str) -> None:
    """A reservation still live whose cycle completed an hour ago (the coordinator died before releasing it)."""
    db = Database(dsn)
    try:
        await PocketLedger(
            db, SimClock(int(time.time() * 1000) - 7_200_000), dict(load_settings().pocket_config)
        ).reserve(reservation, D(100))
        old = int(time.time() * 1000) - 3_600_000
        await CycleRepo(db).save(
            TradeCycle(
                id=cycle,
                symbol="BTCUSDT",
                strategy="ema",
                side=Side.BUY,
                status=CycleStatus.COMPLETED,
                created_at=old,
                updated_at=old,
                entry_price=D(100),
                exit_price=D(101),
                quantity=D(1),
                profit_loss=D(1),
                reservation_id=reservation,
            )
        )
    finally:
        await db.close()


def test_sigkilled_portfolio_leader_is_replaced_and_settles_once(
    tmp_path: Path, redis_url: str, pg_database: str, unique: str
) -> None:
    env = service_env(tmp_path, redis_url, pg_database, unique)
    a = Proc(tmp_path, "portfolio-a", env, "portfolio")
    procs = [a]
    try:
        wait_for(lambda: a.role() == "leader", 60, "portfolio-a leads", procs)
        b = Proc(tmp_path, "portfolio-b", env, "portfolio")
        procs.append(b)
        wait_for(lambda: b.role() == "standby", 60, "portfolio-b stands by", procs)
        asyncio.run(reservation_of_a_finished_cycle(pg_database, "r1", "c1"))
        assert httpx.put(b.url("/pockets/sync"), headers=AUTH, timeout=10).status_code == 503  # a standby
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(10)
        wait_for(lambda: b.role() == "leader", LEASE_S + 10, "portfolio-b took over", procs)
        first = httpx.put(b.url("/pockets/sync"), headers=AUTH, timeout=10).json()["reconciliation"]
        assert [x["reservation"] for x in first["released"]] == ["r1"]
        again = httpx.put(b.url("/pockets/sync"), headers=AUTH, timeout=10).json()["reconciliation"]
        assert again["released"] == [] and again["live_reservations"] == 0  # settled once
    finally:
        for r in procs:
            r.stop()
