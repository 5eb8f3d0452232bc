"""Logs travel over the bus into event_logs; the scheduler publishes a global health report."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from roottrading import messages as m
from roottrading.config import load_settings
from roottrading.runtime import Host
from roottrading.runtime.http import build_app
from roottrading.runtime.logsetup import configure_logging


async def test_service_logs_are_stored_and_searchable(tmp_path: Path) -> None:
    configure_logging("INFO", "json")
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/l.db", api_token="t", data_dir=tmp_path)
    host = Host(settings, ["logger", "trader"])
    await host.start()
    try:
        trader = host.services["trader"]
        trader.log.warning("exchange slow", latency_ms=950, api_key="must-not-leak")
        trader.log.info("order placed", order="rt1")
        for _ in range(100):
            await asyncio.sleep(0.02)
            await host.bus.drain(1)
            rows = await host.services["logger"].repo.query(service="trader")  # type: ignore[attr-defined]
            if len(rows) >= 2:
                break
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(host)), base_url="http://t") as c:
            warn = (await c.get("/api/logger/logs", params={"level": "warning", "service": "trader"})).json()
            assert [r["event"] for r in warn] == ["exchange slow"]
            assert warn[0]["context"]["latency_ms"] == 950
            assert warn[0]["context"]["api_key"] == "**********"  # secrets never stored
            found = (await c.get("/api/logger/logs", params={"q": "placed"})).json()
            assert found and found[0]["service"] == "trader"
    finally:
        await host.stop()


async def test_scheduler_publishes_global_health_report(tmp_path: Path) -> None:
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/h.db", api_token="t", data_dir=tmp_path)
    host = Host(settings, ["trader", "scheduler"])
    reports: list[m.HealthReport] = []

    async def on_health(msg: m.Message) -> None:
        reports.append(msg.payload)

    await host.bus.subscribe(m.SYSTEM_HEALTH, "test", on_health)
    await host.start()
    try:
        for _ in range(100):
            if reports:
                break
            await asyncio.sleep(0.02)
        assert reports, "the health job runs at start"
        rep = reports[0]
        assert rep.status == "ok" and {"trader", "bus", "database"} <= set(rep.components)
    finally:
        await host.stop()
