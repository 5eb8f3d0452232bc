"""`roottrading demo` started twice on the same data folder trades both times (issue 12, item 2).

Why a real process: the failure lived in what a second start found on disk (the first run's cycles, with
later market times than the restarted replay, and open cycles the fresh simulated account cannot close), so
the test runs the command a person runs, twice, on one folder, and stops it with SIGTERM like Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.runtime.test_processes import free_port, wait_http

# The two demo strategies the loss-streak rule disables first on the bundled data: with only them enabled,
# a short first run reaches the state a person reported after a few minutes (everything disabled).
STRATEGIES = "bollinger_touch,stochastic_oversold"
SPEED = "100"  # replayed candles per second and symbol (the default is 20)


def _start(tmp_path: Path, port: int, tag: str) -> tuple[subprocess.Popen[str], Path]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "API_TOKEN", "ROOTTRADING_RULES", "STRATEGIES")
    }
    env.update({"DATA_DIR": str(tmp_path / "data"), "STRATEGIES": STRATEGIES, "LOG_JSON": "true"})
    log = tmp_path / f"run{tag}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "roottrading", "demo", "--port", str(port), "--speed", SPEED],
        cwd=tmp_path,  # the default ./data is then inside tmp_path too
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, log


def _stop(proc: subprocess.Popen[str], log: Path) -> str:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    out = log.read_text()
    assert proc.returncode == 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    return out


def _wait_for(check: Callable[[], Any], timeout: float) -> Any:
    """Poll `check` until it returns something truthy; the last value (falsy) on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


def _filled_cycles(base: str) -> set[str]:
    """Ids of cycles whose entry filled (entry_price set): trades, not just attempts."""
    items = httpx.get(f"{base}/api/trader/cycles", params={"limit": 500}, timeout=5).json()["items"]
    return {c["id"] for c in items if c["entry_price"] is not None}


def _disabled(base: str) -> set[str]:
    return set(httpx.get(f"{base}/api/risk/state", timeout=5).json()["disabled_strategies"])


@pytest.mark.slow
def test_second_demo_start_trades_again(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    proc, log = _start(tmp_path, port, "1")
    try:
        wait_http(f"{base}/api/health", proc, timeout=60)
        # each wait returns at the first trade; the bound is generous for a loaded host (seconds when quiet)
        first = _wait_for(lambda: _filled_cycles(base), timeout=150)
        assert first, "the first demo run never traded"
        # let it run on as a person would, until the loss-streak rule has disabled the strategies (or a while)
        _wait_for(lambda: _disabled(base) >= set(STRATEGIES.split(",")), timeout=20)
        first = _filled_cycles(base)
    finally:
        out1 = _stop(proc, log)
    token = (tmp_path / "data" / "api_token").read_text()
    assert "API token (shown once" in out1

    proc, log = _start(tmp_path, port, "2")
    try:
        wait_http(f"{base}/api/health", proc, timeout=60)
        # cycle ids derive from signal ids, which a deterministic replay repeats: "new" means rows that
        # appear while the second run is up, not ids unseen in the first run
        at_start = _filled_cycles(base)
        second = _wait_for(lambda: _filled_cycles(base) - at_start, timeout=150)
        assert second, f"the second demo run made no trade; disabled strategies: {sorted(_disabled(base))}"
    finally:
        out2 = _stop(proc, log)
    # the token a person pasted into the dashboard still works; the first run's trades are kept aside
    assert (tmp_path / "data" / "api_token").read_text() == token
    assert "API token (shown once" not in out2
    previous = tmp_path / "data" / "demo.previous.db"
    assert f"kept as {previous}" in out2
    with contextlib.closing(sqlite3.connect(previous)) as conn:
        kept = {r[0] for r in conn.execute("SELECT id FROM trade_cycles WHERE entry_price IS NOT NULL")}
    assert first <= kept
