"""Real processes: one service on Redis Streams + PostgreSQL on its reference paths; graceful SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import pytest

from roottrading import messages as m
from roottrading.bus.redis import RedisBus
from roottrading.domain import Candle, OrderRequest, Side

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited early: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not up after {timeout}s")


@pytest.fixture
async def pg_database(postgres_url: str, unique: str):  # type: ignore[no-untyped-def]
    name = f"rt_proc_{unique}"
    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


async def test_trader_as_its_own_process_on_redis_and_postgres(
    redis_url: str, pg_database: str, unique: str, tmp_path: Path
) -> None:
    port = free_port()
    prefix = f"rt-proc-{unique}"
    env = {
        **os.environ,
        "BUS_URL": redis_url,
        "BUS_PREFIX": prefix,
        "DATABASE_URL": pg_database,
        "SYMBOLS": "BTCUSDT",
        "API_TOKEN": "proc-token",
        "DATA_DIR": str(tmp_path),
        "LOG_JSON": "true",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "roottrading", "service", "trader", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    bus = RedisBus(redis_url, prefix=prefix)
    try:
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/health", proc)
        await bus.start()
        candle = Candle(
            symbol="BTCUSDT",
            interval="1m",
            open_time=0,
            close_time=59_999,
            open=100,
            high=101,
            low=99,
            close=100.5,
            volume=3,
        )
        await bus.publish(m.candles_topic("BTCUSDT"), candle, key="BTCUSDT", msg_id=candle.key)
        req = OrderRequest(id="req-proc-1", time=1, symbol="BTCUSDT", side=Side.BUY, quote_quantity=Decimal("50"))
        await bus.publish(m.ORDER_REQUESTS, req, key="BTCUSDT", msg_id=req.id)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(100):
                cycles = (await client.get("/cycles")).json()
                if cycles["total"] and cycles["items"][0]["status"] == "ACTIVE":
                    break
                await asyncio.sleep(0.1)
            assert cycles["total"] == 1 and cycles["items"][0]["status"] == "ACTIVE"
            assert cycles["items"][0]["entry_price"] == "100.5"
            assert (await client.post("/config/pause")).status_code == 401
    finally:
        await bus.close()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "host stopped" in out


def test_sigterm_stops_gracefully(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/g.db",
        "API_TOKEN": "x",
        "LOG_JSON": "true",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "roottrading", "demo", "--port", str(port), "--speed", "500"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/api/health", proc)
        time.sleep(1.0)  # let work be in flight
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "shutdown requested" in out and "host stopped" in out
    assert "Traceback" not in out
