"""/metrics in per-service mode, switched off, and the bus counters a failing handler leaves."""

from __future__ import annotations

from pathlib import Path

import httpx

from roottrading import messages as m
from roottrading.bus.memory import MemoryBus
from roottrading.config import load_settings
from roottrading.runtime import Host
from roottrading.runtime.http import build_app
from roottrading.runtime.service import Consumes, Service
from tests.monitoring.conftest import samples


def _settings(tmp_path: Path, **kw: object):  # type: ignore[no-untyped-def]
    return load_settings(
        symbols="BTCUSDT", database_url=f"sqlite+aiosqlite:///{tmp_path}/m.db", api_token="t", data_dir=tmp_path, **kw
    )


async def _get(host: Host, per_service: bool, path: str) -> httpx.Response:
    app = build_app(host, per_service=per_service)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        return await client.get(path)


async def test_per_service_mode_serves_its_own_metrics(tmp_path: Path) -> None:
    host = Host(_settings(tmp_path), ["risk"], per_service_http=True)
    await host.start()
    try:
        r = await _get(host, True, "/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        got = samples(r.text)
        assert {lab["service"] for lab, _ in got["roottrading_risk_checks_total"]} == {"risk"}
        assert "roottrading_orders_sent_total" not in got  # the trader is not in this process
        assert {lab["rule"] for lab, _ in got["roottrading_risk_refusals_total"]} >= {"max_drawdown"}
    finally:
        await host.stop()


async def test_metrics_can_be_switched_off(tmp_path: Path) -> None:
    host = Host(_settings(tmp_path, metrics_enabled=False), ["risk"], per_service_http=True)
    await host.start()
    try:
        assert host.metrics is None and host.ctx.tap is None
        assert (await _get(host, True, "/metrics")).status_code == 404
    finally:
        await host.stop()


class _Flaky(Service):
    """Fails on every message whose payload says so: retried, then dead-lettered."""

    name = "flaky"

    def consumes(self) -> list[Consumes]:
        return [Consumes("test.flaky", self.on_msg)]

    async def on_msg(self, msg: m.Message) -> None:
        if msg.payload.note == "fail":
            raise ValueError("no")


async def test_failures_and_dead_letters_are_counted_per_topic(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from roottrading.runtime import host as host_mod

    monkeypatch.setattr(host_mod, "load_service", lambda name: _Flaky)
    bus = MemoryBus("memory://sync", synchronous=True)
    host = Host(_settings(tmp_path), ["flaky"], bus=bus, per_service_http=True)
    await host.start()
    try:
        await bus.publish("test.flaky", m.Ping(seq=1, note="ok"))
        await bus.publish("test.flaky", m.Ping(seq=2, note="fail"))
        got = samples((await _get(host, True, "/metrics")).text)
        row = {"service": "flaky", "topic": "test.flaky", "group": "flaky"}
        assert (row, 1.0) in got["roottrading_bus_delivered_total"]
        assert (row, float(bus.retry.max_attempts)) in got["roottrading_bus_handler_failures_total"]
        assert ({"service": "flaky", "topic": "test.flaky"}, 1.0) in got["roottrading_bus_dead_lettered_total"]
        published = {lab["topic"]: v for lab, v in got["roottrading_bus_published_total"]}
        assert published["test.flaky"] == 2 and published["deadletter.test.flaky"] == 1
        count = [v for lab, v in got["roottrading_bus_handler_duration_seconds_count"] if lab == row]
        assert count == [1.0 + bus.retry.max_attempts]
    finally:
        await host.stop()
