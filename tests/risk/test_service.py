"""The risk service: reload on change (a bad edit keeps the previous rules), routes, kill switch events,
state built from the bus."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from roottrading import messages as m
from roottrading.config import load_settings
from roottrading.domain import CycleStatus, Side, TradeCycle
from roottrading.risk import OrderIntent
from roottrading.runtime import Host
from roottrading.runtime.http import build_app

TOKEN = "t"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def write(path: Path, text: str, mtime: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime * 10**9, mtime * 10**9))


async def make_host(tmp_path: Path, rules: Path, **tuning: Any) -> Host:
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/r.db",
        api_token=TOKEN,
        data_dir=tmp_path,
        symbols="BTCUSDT",
        risk_rules_path=rules,
        risk_reload_s=3600,
        **tuning,
    )
    host = Host(settings, ["risk"])
    await host.start()
    return host


async def test_reload_on_change_and_bad_edit_keeps_previous(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    write(rules, "version: 1\nrules:\n  max_open_cycles: {limit: 5}\n", 1_000)
    host = await make_host(tmp_path, rules)
    try:
        risk: Any = host.services["risk"]
        assert risk.rules.rules.max_open_cycles.limit == 5
        assert await risk.reload_if_changed() is False  # unchanged mtime: nothing read
        write(rules, "version: 1\nrules:\n  max_open_cycles: {limit: 2}\n", 2_000)
        assert await risk.reload_if_changed() is True
        assert risk.rules.rules.max_open_cycles.limit == 2
        write(rules, "version: 1\nrules:\n  max_open_cycles: {limit: -3}\n", 3_000)
        assert await risk.reload_if_changed() is False
        assert risk.rules.rules.max_open_cycles.limit == 2  # previous rules still in force
        assert "max_open_cycles.limit" in risk.rules_error
        h = await risk.health()
        assert h.status == "degraded" and "greater than or equal to 0" in h.details["rules_error"]
        write(rules, "version: 1\nrules:\n  max_open_cycles: {limit: 7}\n", 4_000)
        assert await risk.reload_if_changed() is True and risk.rules_error is None
        assert risk.rules.rules.max_open_cycles.limit == 7
    finally:
        await host.stop()


async def test_routes_check_rules_kill_switch_and_resume(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    write(rules, "version: 1\nrules:\n  symbol_blacklist: {symbols: [DOGEUSDT]}\n", 1_000)
    host = await make_host(tmp_path, rules)
    events: list[m.RiskEvent] = []

    async def grab(msg: m.Message) -> None:
        events.append(msg.payload)

    await host.bus.subscribe(m.RISK_EVENTS, "test", grab)
    try:
        app = build_app(host)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            assert (await c.get("/api/risk/health")).json()["status"] == "ok"
            rows = (await c.get("/api/risk/rules")).json()
            names = {r["name"]: r for r in rows}
            assert {"limit", "value", "state", "action"} <= set(names["daily_loss_limit"])
            assert names["symbol_blacklist"]["limit"] == "DOGEUSDT"
            intent = m.to_builtins(
                OrderIntent(id="a", symbol="DOGEUSDT", side=Side.BUY, quantity=Decimal(100), price=Decimal("0.1"))
            )
            assert (await c.post("/api/risk/check", json=intent)).status_code == 401
            d = (await c.post("/api/risk/check", json=intent, headers=AUTH)).json()
            assert d["allowed"] is False and d["rule"] == "symbol_blacklist"
            bad = await c.post("/api/risk/check", json={"id": "x"}, headers=AUTH)
            assert bad.status_code == 422 and "bad order intent" in bad.text
            intent["symbol"] = "BTCUSDT"
            assert (await c.post("/api/risk/check", json=intent, headers=AUTH)).json()["allowed"] is True
            assert (await c.post("/api/risk/kill-switch", headers=AUTH)).json()["killed"] is True
            await host.bus.drain(5)
            assert events and events[-1].action == "kill_switch"
            intent["id"] = "b"
            d = (await c.post("/api/risk/check", json=intent, headers=AUTH)).json()
            assert d["allowed"] is False and d["action"] == "kill_switch"
            assert (await c.post("/api/risk/resume", headers=AUTH)).status_code == 200
            await host.bus.drain(5)
            assert events[-1].action == "resume"
            intent["id"] = "c"
            assert (await c.post("/api/risk/check", json=intent, headers=AUTH)).json()["allowed"] is True
    finally:
        await host.stop()


async def test_losses_on_the_bus_pause_and_announce(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    write(rules, "version: 1\nrules:\n  daily_loss_limit: {limit_pct: 2}\n", 1_000)
    host = await make_host(tmp_path, rules, risk_initial_equity="1000")
    events: list[m.RiskEvent] = []

    async def grab(msg: m.Message) -> None:
        events.append(msg.payload)

    await host.bus.subscribe(m.RISK_EVENTS, "test", grab)
    try:
        now = host.clock.now_ms()
        for i in range(3):
            c = TradeCycle(
                id=f"c{i}",
                symbol="BTCUSDT",
                strategy="s",
                side=Side.BUY,
                status=CycleStatus.COMPLETED,
                created_at=now,
                updated_at=now,
                quantity=Decimal(1),
                entry_price=Decimal(100),
                exit_price=Decimal(99),
                profit_loss=Decimal(-8),
            )
            await host.bus.publish(m.CYCLE_UPDATES, c, key="BTCUSDT")
            await host.bus.publish(m.CYCLE_UPDATES, c, key="BTCUSDT")  # redelivery counted once
        assert await host.bus.drain(5)
        risk: Any = host.services["risk"]
        assert risk.tracker.realised_today == Decimal(-24)
        assert risk.tracker.paused and [e.action for e in events] == ["pause"]
        assert "daily loss limit reached" in events[0].message
    finally:
        await host.stop()


async def test_an_invalid_cooldown_edit_is_refused_and_the_previous_rules_stay(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    write(rules, "version: 1\nrules:\n  strategy_loss_streak: {cooldown: 2h}\n", 1_000)
    host = await make_host(tmp_path, rules)
    try:
        risk: Any = host.services["risk"]
        write(rules, "version: 1\nrules:\n  strategy_loss_streak: {cooldown: -2h}\n", 2_000)
        assert await risk.reload_if_changed() is False
        assert risk.rules.rules.strategy_loss_streak.cooldown == "2h"
        assert "rules.strategy_loss_streak.cooldown: cooldown '-2h' is negative" in risk.rules_error
    finally:
        await host.stop()
