"""Host.stop() is bounded: a service whose stop never returns must not keep the process from stopping (a test
fixture hung for minutes on one such stop); the stuck step is cancelled and logged with every task's stack."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from roottrading.config import load_settings
from roottrading.runtime import Host
from roottrading.runtime import host as host_module


async def test_a_service_stop_that_never_returns_is_cancelled_and_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host_module, "STOP_STEP_S", 0.3)
    settings = load_settings(
        symbols="BTCUSDT", database_url=f"sqlite+aiosqlite:///{tmp_path}/h.db", api_token="t", data_dir=tmp_path
    )
    host = Host(settings, ["pnl"])
    await host.start()
    forever = asyncio.Event()

    async def stuck_stop() -> None:
        await forever.wait()  # never set

    monkeypatch.setattr(host.services["pnl"], "stop", stuck_stop)
    started = time.monotonic()
    with capture_logs() as logs:
        await asyncio.wait_for(host.stop(), 10)
    assert time.monotonic() - started < 5
    timed_out = [e for e in logs if e["event"].startswith("host stop: a step did not finish")]
    assert timed_out and timed_out[0]["step"] == "service pnl"
    assert any("stuck_stop" in stack for stack in timed_out[0]["tasks"].values()), timed_out[0]["tasks"]
