"""Issue 18 item 3 with real processes and a real SIGKILL: a killed platform stays killed after a restart on
the same data folder, and the paper account keeps its position (no order sent twice, balances exact)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from roottrading import messages as m
from roottrading.bus.redis import RedisBus
from roottrading.domain import Candle, OrderRequest, Side
from tests.runtime.test_processes import free_port, wait_http

TOKEN = "durable-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
D = Decimal


def start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "roottrading", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def sigkill(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == -signal.SIGKILL
    return out


def stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    return out


async def poll(client: httpx.AsyncClient, path: str, ok: Any, timeout: float = 20) -> Any:
    """GET `path` until `ok(json)` holds (a condition, not a fixed sleep)."""
    body: Any = None
    for _ in range(int(timeout / 0.1)):
        body = (await client.get(path)).json()
        if ok(body):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path}: condition not met; last answer {body}")


async def test_a_killed_platform_stays_killed_after_sigkill_and_restart(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "TRADING_MODE": "demo",
        "DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/platform.db",
        "SYMBOLS": "BTCUSDT",
        "API_TOKEN": TOKEN,
        "LOG_JSON": "true",
    }
    base = f"http://127.0.0.1:{port}"
    proc = start(["up", "--port", str(port)], env, tmp_path)
    try:
        await asyncio.to_thread(wait_http, f"{base}/api/health", proc, 60)
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            assert (await client.post("/api/risk/kill-switch", headers=AUTH)).json()["killed"] is True
            await poll(client, "/api/health", lambda h: h["components"]["trader"]["killed"] is True)
        sigkill(proc)

        proc = start(["up", "--port", str(port)], env, tmp_path)  # the same data folder, nothing else
        await asyncio.to_thread(wait_http, f"{base}/api/health", proc, 60)
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            state = (await client.get("/api/risk/state")).json()
            assert state["killed"] is True and state["paused"] is True
            assert [lk["action"] for lk in state["locks"]] == ["kill_switch"]
            trader = (await client.get("/api/health")).json()["components"]["trader"]
            assert trader["killed"] is True and trader["paused"] is True
            # the coordinator's gate: every entry is refused by the risk manager
            intent = {"id": "after-restart", "symbol": "BTCUSDT", "side": "BUY", "quantity": "0.01", "price": "20000"}
            verdict = (await client.post("/api/risk/check", json=intent, headers=AUTH)).json()
            assert verdict["allowed"] is False and verdict["rule"] == "kill_switch"
            # a manual entry through the trader's API is refused (by the money rules' risk gate, and the
            # trader's own restored kill switch would refuse it next), and nothing reaches the exchange
            order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "20000"}
            refused = await client.post("/api/trader/order", json=order, headers=AUTH)
            assert refused.status_code in (409, 422) and "kill switch" in refused.text, refused.text
            assert (await client.get("/api/trader/orders")).json() == []
            cycles = (await client.get("/api/trader/cycles")).json()
            assert all(c["status"] == "CANCELED" for c in cycles["items"])
    finally:
        out = stop(proc)
    assert "Traceback" not in out, out


def paper_account(db: Path) -> dict[str, Any]:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT doc FROM safety_state WHERE key = 'paper_account'").fetchone()
    assert row is not None
    return json.loads(row[0])  # type: ignore[no-any-return]


def candle(i: int, price: float) -> Candle:
    t = 1_800_000_000_000 + i * 60_000
    return Candle(
        symbol="BTCUSDT",
        interval="1m",
        open_time=t,
        close_time=t + 59_999,
        open=price,
        high=price,
        low=price,
        close=price,
        volume=5,
    )


async def test_the_paper_account_survives_sigkill_with_a_cycle_open(
    redis_url: str, unique: str, tmp_path: Path
) -> None:
    port = free_port()
    prefix = f"rt-paper-{unique}"
    db = tmp_path / "paper.db"
    env = {
        **os.environ,
        "TRADING_MODE": "demo",
        "BUS_URL": redis_url,
        "BUS_PREFIX": prefix,
        "DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "SYMBOLS": "BTCUSDT",
        "API_TOKEN": TOKEN,
        "DATA_DIR": str(tmp_path),
        "LOG_JSON": "true",
    }
    base = f"http://127.0.0.1:{port}"
    bus = RedisBus(redis_url, prefix=prefix)
    proc = start(["service", "trader", "--port", str(port)], env, tmp_path)
    try:
        await asyncio.to_thread(wait_http, f"{base}/health", proc, 60)
        await bus.start()
        c0 = candle(0, 20_000)
        await bus.publish(m.candles_topic("BTCUSDT"), c0, key="BTCUSDT", msg_id=c0.key)
        # the trader's candle consumer and its order consumer are separate: without the price in the paper
        # account first, the MARKET buy is refused "no market price" (CI saw it once)
        assert await bus.drain(30), "the trader did not take the first candle"
        buy = OrderRequest(id="paper-buy-1", time=1, symbol="BTCUSDT", side=Side.BUY, quantity=D("0.01"))
        await bus.publish(m.ORDER_REQUESTS, buy, key="BTCUSDT", msg_id=buy.id)
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            cycles = await poll(client, "/cycles", lambda b: b["total"] and b["items"][0]["status"] == "ACTIVE")
        held = D(cycles["items"][0]["quantity"])
        sigkill(proc)  # with the cycle ACTIVE

        proc = start(["service", "trader", "--port", str(port)], env, tmp_path)
        await asyncio.to_thread(wait_http, f"{base}/health", proc, 60)
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            cycles = (await client.get("/cycles")).json()
            assert [(c["status"], D(c["quantity"])) for c in cycles["items"]] == [("ACTIVE", held)]
            fills = (await client.get("/trades")).json()
            assert len(fills) == 1 and fills[0]["side"] == "BUY"
            acct = paper_account(db)["balances"]
            assert D(acct["BTC"][0]) == held == D(fills[0]["quantity"]) - D(fills[0]["commission"])
            assert D(acct["USDT"][0]) == D(10_000) - D(fills[0]["quote_quantity"])

            c1 = candle(1, 20_200)
            await bus.publish(m.candles_topic("BTCUSDT"), c1, key="BTCUSDT", msg_id=c1.key)
            assert await bus.drain(30), "the restarted trader did not take the candle"
            sell = OrderRequest(id="paper-sell-1", time=2, symbol="BTCUSDT", side=Side.SELL)
            await bus.publish(m.ORDER_REQUESTS, sell, key="BTCUSDT", msg_id=sell.id)
            await poll(client, "/cycles", lambda b: b["items"][0]["status"] == "COMPLETED")
            orders = (await client.get("/orders")).json()
            assert sorted((o["side"], o["status"]) for o in orders) == [("BUY", "FILLED"), ("SELL", "FILLED")]
            fills = {f["side"]: f for f in (await client.get("/trades")).json()}
            health = (await client.get("/health")).json()
            assert health["components"]["trader"]["rejected"] == 0, health
        acct = paper_account(db)["balances"]
        b, s = fills["BUY"], fills["SELL"]
        assert D(acct["BTC"][0]) == 0
        assert D(acct["USDT"][0]) == D(10_000) - D(b["quote_quantity"]) + D(s["quote_quantity"]) - D(s["commission"])
    finally:
        await bus.close()
        out = stop(proc)
    assert "insufficient balance" not in out.lower(), out
