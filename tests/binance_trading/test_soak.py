"""Soak: 1 000 random order intents through BinanceExchange against fake Binance (a subprocess) with
faults on, the client process SIGKILLed at random moments and restarted, and the simulator itself
restarted once (state file). Afterwards the exchange and the client's records must agree exactly.

The killed process is the small client in soak_client.py (stores each intent in SQLite before sending and
reconciles by client id on start), not the trader service.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from roottrading.exchange.binance.signing import HmacSigner, signed_query

from .conftest import free_port
from .soak_client import API_KEY, API_SECRET, SYMBOL

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
N_ORDERS = 1000
FAULTS = [
    "--order-timeout-prob",
    "0.01",
    "--order-timeout-s",
    "2.5",
    "--order-5xx-prob",
    "0.02",
    "--timestamp-error-prob",
    "0.02",
    "--insufficient-balance-prob",
    "0.02",
    "--rest-5xx-prob",
    "0.01",
    "--rest-429-prob",
    "0.002",
    "--user-stream-drop-every-s",
    "4",
]


def start_server(port: int, state: Path, log: Path) -> subprocess.Popen:
    cmd = [
        PY,
        "-m",
        "roottrading.exchange.fake_binance.cli",
        "--port",
        str(port),
        "--symbols",
        SYMBOL,
        "--api-key",
        API_KEY,
        "--api-secret",
        API_SECRET,
        "--state",
        str(state),
        "--speed",
        "300",
        "--order-limit-10s",
        "10000",
        "--synthetic-count",
        "20000",
        *FAULTS,
    ]
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v3/ping", timeout=0.5).status_code == 200:
                return p
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    p.kill()
    raise AssertionError(f"fake Binance did not start: {log.read_text()[-2000:]}")


def signed_get(port: int, path: str, params: dict) -> object:
    for _ in range(20):  # injected 5xx/429 faults are still on: retry politely
        q = signed_query({**params, "timestamp": int(time.time() * 1000)}, HmacSigner(API_SECRET))
        r = httpx.get(f"http://127.0.0.1:{port}{path}?{q}", headers={"X-MBX-APIKEY": API_KEY}, timeout=5)
        if r.status_code == 200:
            return r.json()
        time.sleep(1.0)
    raise AssertionError(f"{path}: {r.status_code} {r.text}")


@pytest.mark.slow
def test_soak_kill_restart_exactly_once(tmp_path: Path) -> None:
    port = free_port()
    state, db, log = tmp_path / "engine.json", tmp_path / "client.db", tmp_path / "server.log"
    server = start_server(port, state, log)
    rng = random.Random(7)
    kills = 0
    server_restarted = False
    started = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        while True:
            client = subprocess.Popen(
                [
                    PY,
                    "-m",
                    "tests.binance_trading.soak_client",
                    f"http://127.0.0.1:{port}",
                    str(db),
                    str(N_ORDERS),
                    "3",
                ],
                cwd=ROOT,
                env=env,
                stdout=(tmp_path / "client.log").open("ab"),
                stderr=subprocess.STDOUT,
            )
            try:
                rc = client.wait(timeout=rng.uniform(2.0, 7.0))
            except subprocess.TimeoutExpired:
                client.send_signal(signal.SIGKILL)
                client.wait()
                kills += 1
                if kills == 4 and not server_restarted:  # the simulator restarts too, from its state file
                    server.send_signal(signal.SIGTERM)
                    server.wait(timeout=20)
                    server = start_server(port, state, log)
                    server_restarted = True
                continue
            assert rc == 0, (tmp_path / "client.log").read_text()[-3000:]
            break
        elapsed = time.monotonic() - started
        orders = signed_get(port, "/api/v3/allOrders", {"symbol": SYMBOL, "orderId": 1, "limit": 1000})
        more = (
            signed_get(
                port, "/api/v3/allOrders", {"symbol": SYMBOL, "orderId": orders[-1]["orderId"] + 1, "limit": 1000}
            )
            if len(orders) == 1000
            else []
        )
        orders = orders + more
        trades = signed_get(port, "/api/v3/myTrades", {"symbol": SYMBOL, "fromId": 0, "limit": 1000})
        account = signed_get(port, "/api/v3/account", {})
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)

    con = sqlite3.connect(db)
    intents = con.execute("SELECT cid, action, state, status, executed FROM intents").fetchall()
    assert len(intents) == N_ORDERS and all(s != "pending" for _, _, s, _, _ in intents)
    # 1. no client order id used twice on the exchange, and exchange orders == acked intents, one to one
    counts = Counter(o["clientOrderId"] for o in orders)
    assert max(counts.values()) == 1
    acked = {cid: (status, Decimal(ex)) for cid, a, s, status, ex in intents if a == "new" and s == "acked"}
    exchange = {o["clientOrderId"]: (o["status"], Decimal(o["executedQty"])) for o in orders}
    assert exchange == acked
    # 2. the client's fills are the exchange's trades, and balances match to the last unit
    fills = con.execute("SELECT trade_id, side, qty, quote, commission, commission_asset FROM fills").fetchall()
    assert len(trades) < 1000
    assert sorted(int(f[0]) for f in fills) == sorted(t["id"] for t in trades)
    expected = {"USDT": Decimal(10000), "BTC": Decimal(1)}
    for _, side, qty, quote, fee, fee_asset in fills:
        sign = 1 if side == "BUY" else -1
        expected["BTC"] += sign * Decimal(qty)
        expected["USDT"] -= sign * Decimal(quote)
        expected[fee_asset] -= Decimal(fee)
    actual = {b["asset"]: Decimal(b["free"]) + Decimal(b["locked"]) for b in account["balances"]}
    assert actual == expected
    clog = (tmp_path / "client.log").read_text()
    seen = {
        k: clog.count(k)
        for k in (
            "binance.order_fate_unknown",
            "binance.order_fate_recovered",
            "binance.timestamp_rejected_resync",
            "binance.user_stream_closed",
        )
    }
    print(
        f"\nsoak: {N_ORDERS} intents, {len(orders)} orders, {len(trades)} trades, {kills} client kills, "
        f"server restarted={server_restarted}, {elapsed:.1f}s, client saw {seen}"
    )
    assert kills >= 3 and server_restarted
    assert seen["binance.order_fate_unknown"] > 0 and seen["binance.order_fate_recovered"] > 0
    assert seen["binance.timestamp_rejected_resync"] > 0
