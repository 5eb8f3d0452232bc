"""A demo run (`roottrading demo`: fake Binance, the real gateway, every service, simulated fills) scraped at
`GET /metrics` once it has traded: what `curl /metrics` on `make demo` shows. Shared by the tests that check the
metric families and the Grafana/Prometheus files against what is really exported."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.monitoring.receiver import Receiver
from tests.runtime.test_processes import free_port, wait_http

REPO = Path(__file__).resolve().parents[2]


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Sample name (with its _total/_bucket/... suffix) -> [(labels, value)]."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def _traded(text: str) -> bool:
    got = samples(text)
    closed = sum(v for _, v in got.get("roottrading_cycles_closed_total", []))
    return closed > 0 and "roottrading_pocket_used_quote" in got and "roottrading_pnl_realised_quote" in got


@pytest.fixture(scope="session")
def demo_receiver() -> Iterator[Receiver]:
    """Where the demo run's notifications go (NOTIFY_URLS=json://127.0.0.1:PORT/demo)."""
    with Receiver() as r:
        yield r


@pytest.fixture(scope="session")
def demo_metrics(tmp_path_factory: pytest.TempPathFactory, demo_receiver: Receiver) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("demo_metrics")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "API_TOKEN", "STRATEGIES", "NOTIFY_URLS")}
    env.update(
        {
            "DATA_DIR": str(tmp / "data"),
            "LOG_JSON": "true",
            "PYTHONPATH": str(REPO),
            "NOTIFY_URLS": demo_receiver.url("/demo"),
            "NOTIFY_RATE_PER_MIN": "1000",
        }
    )
    log = tmp / "demo.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "roottrading", "demo", "--port", str(port), "--speed", "100"],
        cwd=tmp,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/api/health", proc, timeout=60)
        deadline, text = time.monotonic() + 300, ""
        while time.monotonic() < deadline:  # until a cycle closed and the pockets and PnL are valued
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            if _traded(text):
                break
            time.sleep(1)
        assert _traded(text), log.read_text()[-3000:]
        yield text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
