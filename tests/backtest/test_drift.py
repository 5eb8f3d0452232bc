"""`roottrading compare`: a demo-like run of the platform (the slice pipeline writing to a store) beside the
replay backtest of the same candles, trade by trade; and a crafted store whose differences carry reasons."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from sqlalchemy import delete, select, update

from roottrading.backtest.drift import DriftReport, compare, render
from roottrading.backtest.replay import run_replay
from roottrading.clock import SimClock
from roottrading.config import load_settings
from roottrading.runtime import Host, Wiring
from roottrading.store import Database
from roottrading.store.tables import decisions, trade_cycles, trade_executions, trade_fills
from tests.backtest.helpers import STRATEGIES, config, hourly

PIPELINE = ["logger", "portfolio", "pnl", "risk", "trader", "coordinator", "analyzer", "replay"]
# the demo run's coordinator settings, given to the backtest the way a user would (`--set coordinator.*`)
COORD = {"cooldown_s": 0, "max_signal_age_s": 0}
SETS = {f"coordinator.{k}": str(v) for k, v in COORD.items()}


async def demo_run(tmp_path: Path) -> str:
    """The platform fed the bundled candles by its replay service (as `roottrading demo` is), into a store.
    Paced at 40 candles/s so the pipeline keeps up, as a live platform does with one candle an hour."""
    url = f"sqlite+aiosqlite:///{tmp_path}/live.db"
    settings = load_settings(
        symbols="BTCUSDT",
        interval="1h",
        database_url=url,
        data_dir=tmp_path,
        strategies=",".join(STRATEGIES),
        replay_speed=40,
    )
    host = Host(settings, PIPELINE, clock=SimClock(), wiring=Wiring(replay_candles=hourly(), coordinator=COORD))
    await host.start()
    try:
        await asyncio.wait_for(host.services["replay"].done.wait(), 60)  # type: ignore[attr-defined]
        assert await host.bus.drain(30)
    finally:
        await host.stop()
    return url


def assert_explained(report: DriftReport) -> None:
    for m in report.matched:
        assert m.entry_time_diff_ms == 0 or any("latency" in r or "before" in r for r in m.reasons), m
        assert m.entry_price_diff_bps == 0 or any("another price" in r for r in m.reasons), m
        assert Decimal(m.quantity_diff) == 0 or any("size" in r or "partial" in r for r in m.reasons), m
        assert Decimal(m.pnl_diff) == 0 or m.reasons, m
    for u in [*report.live_only, *report.backtest_only]:
        assert u.reason, u


async def test_a_demo_run_and_its_backtest_match_or_every_difference_has_a_reason(tmp_path: Path) -> None:
    url = await demo_run(tmp_path)
    db = Database(url)
    try:
        report = await compare(db, config(settings=SETS), {"BTCUSDT": hourly()})
    finally:
        await db.close()
    assert report.matched, report.as_json()
    assert_explained(report)
    live_trades = len(report.matched) + len(report.live_only)
    assert live_trades >= 1 and not report.live_only, report.as_json()  # every demo trade had a backtest signal


async def _crafted_live_store(tmp_path: Path) -> tuple[Database, list[str]]:
    """The backtest's own store, then edited into a "live" one: the risk manager rejected the first entry, the
    second filled at another price, the third was a partial fill."""
    work = tmp_path / "live"
    work.mkdir()
    await run_replay(config(settings=SETS), {"BTCUSDT": hourly()}, workdir=work)
    db = Database(f"sqlite+aiosqlite:///{work}/replay.db")
    async with db.begin() as conn:
        rows = (await conn.execute(select(trade_cycles).order_by(trade_cycles.c.created_at))).mappings().all()
        filled = [r for r in rows if r["entry_price"] is not None]
        assert len(filled) >= 3, rows
        rejected, repriced, partial = filled[:3]
        # 1. rejected by the risk manager: no cycle, no order, the decision says why
        oids = [rejected["entry_order_id"], rejected["exit_order_id"]]
        await conn.execute(delete(trade_fills).where(trade_fills.c.order_id.in_(oids)))
        await conn.execute(delete(trade_executions).where(trade_executions.c.order_id.in_(oids)))
        await conn.execute(delete(trade_cycles).where(trade_cycles.c.id == rejected["id"]))
        await conn.execute(
            update(decisions)
            .where(decisions.c.signal_id == rejected["signal_id"])
            .values(decision="rejected", reason="daily loss limit reached", details={"stage": "risk"})
        )
        # 2. another fill price
        price = Decimal(str(repriced["entry_price"])) + Decimal("7.5")
        await conn.execute(
            update(trade_fills).where(trade_fills.c.order_id == repriced["entry_order_id"]).values(price=price)
        )
        await conn.execute(update(trade_cycles).where(trade_cycles.c.id == repriced["id"]).values(entry_price=price))
        # 3. a partial fill: the order asked for more than was executed
        order = (
            (
                await conn.execute(
                    select(trade_executions).where(trade_executions.c.order_id == partial["entry_order_id"])
                )
            )
            .mappings()
            .one()
        )
        await conn.execute(
            update(trade_executions)
            .where(trade_executions.c.order_id == partial["entry_order_id"])
            .values(quantity=Decimal(str(order["quantity"])) * 2)
        )
    return db, [rejected["signal_id"], repriced["signal_id"], partial["signal_id"]]


async def test_a_rejected_decision_another_fill_price_and_a_partial_fill_are_reported(tmp_path: Path) -> None:
    db, (rejected, repriced, partial) = await _crafted_live_store(tmp_path)
    try:
        report = await compare(db, config(settings=SETS), {"BTCUSDT": hourly()})
    finally:
        await db.close()
    assert_explained(report)
    assert not report.live_only
    (only,) = report.backtest_only
    assert only.signal_id == rejected
    assert only.reason == "the live platform's risk manager rejected it: daily loss limit reached"
    by_sig = {m.signal_id: m for m in report.matched}
    assert any(r.startswith("fill at another price") for r in by_sig[repriced].reasons), by_sig[repriced]
    assert by_sig[repriced].entry_price_diff_bps > 0
    assert any(r.startswith("partial fill") for r in by_sig[partial].reasons), by_sig[partial]
    untouched = [m for s, m in by_sig.items() if s not in (repriced, partial)]
    assert untouched and all(not m.reasons for m in untouched)  # the rest is the same trade on both sides
    assert report.as_json()["backtest_only"][0]["reason"] == only.reason
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(render(report))
    text = console.export_text()
    assert "daily loss limit reached" in text and "fill at another price" in text


def test_compare_command_prints_json_and_a_table(tmp_path: Path, monkeypatch: object) -> None:
    import json

    import pytest
    from typer.testing import CliRunner

    from roottrading.cli import app

    async def crafted() -> tuple[str, list[str]]:
        db, sigs = await _crafted_live_store(tmp_path)
        url = str(db.engine.url)
        await db.close()
        return url, sigs

    url, (rejected, _, _) = asyncio.run(crafted())
    mp = pytest.MonkeyPatch()
    try:
        for k, v in {
            "DATABASE_URL": url,
            "SYMBOLS": "BTCUSDT",
            "INTERVAL": "1h",
            "STRATEGIES": ",".join(STRATEGIES),
            "COLUMNS": "240",
        }.items():
            mp.setenv(k, v)
        cs = hourly()
        args = ["compare", "--start", str(cs[0].open_time), "--end", str(cs[-1].open_time + 3_600_000)]
        args += ["--data", "bundled", *[x for k, v in SETS.items() for x in ("--set", f"{k}={v}")]]
        res = CliRunner().invoke(app, [*args, "--json"])
        assert res.exit_code == 1, res.output
        out = json.loads(res.output)
        assert [u["signal_id"] for u in out["backtest_only"]] == [rejected]
        assert "risk manager rejected it" in out["backtest_only"][0]["reason"]
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 1 and "Matched trades" in res.output and "daily loss limit" in res.output, res.output
    finally:
        mp.undo()
