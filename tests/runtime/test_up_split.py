"""`roottrading up --split` for real: 12 service processes (two analyzers) on Redis Streams + PostgreSQL against the local
Binance simulator. It trades (a filled cycle through the trader's API), a SIGKILLed service comes back, SIGTERM
stops every process. The coordinator asks the risk service over HTTP with the token, so a trade also proves
that service-to-service call authenticates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from roottrading.runtime.supervisor import SPLIT_PORTS
from tests.runtime.split_support import (
    Lines,
    alive,
    drop_keys,
    free_ports,
    free_ports_with_replicas,
    pg_database,
    wait_until,
)

__all__ = ["pg_database"]  # the fixture, imported for pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_up_split_trades_restarts_a_killed_service_and_stops_on_sigterm(
    redis_url: str, pg_database: str, unique: str, tmp_path: Path
) -> None:
    names = list(SPLIT_PORTS)
    ports = dict(zip(names, free_ports_with_replicas(len(names)), strict=True))
    fake_port = free_ports(1)[0]
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
    out = Lines(up)
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

        cycle = wait_until(filled_cycle, 150, "a filled cycle", out)
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
        restarted = wait_until(
            lambda: [e for e in out.events("service started") if e["service"] == "trader" and e["start"] == 2],
            90,  # back-off 1 s; a loaded machine is slow to notice and spawn
            "the trader restarted",
            out,
        )
        pids.add(int(restarted[0]["pid"]))
        wait_until(lambda: filled_cycle(), 60, "the restarted trader answering", out)
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(timeout=60)
        finally:
            if up.poll() is None:
                up.kill()
            fake.send_signal(signal.SIGTERM)
            fake.wait(timeout=20)
            drop_keys(redis_url, f"rt-split-{unique}")
    assert up.returncode == 0, out.text()
    assert out.events("every service stopped")[-1]["clean"] is True
    assert not [p for p in pids if alive(p)]
    assert "Traceback" not in out.text(last=len(out.lines))
