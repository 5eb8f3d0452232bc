"""`roottrading backtest` end to end on the bundled candles: JSON, a self-contained HTML report, the stored run,
and the errors a user meets (missing data, refused data, a bad --set)."""

from __future__ import annotations

import asyncio
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from roottrading.backtest.store import BacktestRepo
from roottrading.cli import app
from roottrading.store import Database

BASE = ["backtest", "--symbols", "BTCUSDT", "--interval", "1h", "--data", "bundled", "--no-progress"]


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/rt.db"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    return url


def _exact(t: dict[str, object]) -> dict[str, object]:
    money = ("entry_price", "exit_price", "quantity", "fees", "pnl")
    return {k: Decimal(str(v)) if k in money and v is not None else v for k, v in t.items()}


def run(args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(app, args)
    return res.exit_code, res.output


def test_backtest_writes_json_report_and_stores_the_run(tmp_path: Path, db_url: str) -> None:
    out, rep = tmp_path / "r.json", tmp_path / "r.html"
    code, text = run(
        [*BASE, "--strategy", "ema_cross", "--strategy", "macd_crossover", "--json", str(out), "--report", str(rep)]
    )
    assert code == 0, text
    assert "the fast engine cannot model this run" in text and "buy & hold" in text  # two strategies: replay
    doc = json.loads(out.read_text())
    assert doc["candles"] == 120 and doc["engine"] == "replay" and doc["fallback"]
    assert doc["seconds"] > 0 and doc["trades"]
    for t in doc["trades"]:
        assert {
            "symbol",
            "strategy",
            "entry_time",
            "entry_price",
            "exit_time",
            "exit_price",
            "quantity",
            "fees",
            "pnl",
        } <= set(t)
        assert isinstance(t["entry_time"], int) and isinstance(t["pnl"], str) and isinstance(t["entry_price"], str)
    m = doc["metrics"]
    for key in (
        "total_return",
        "sharpe",
        "sortino",
        "max_drawdown",
        "calmar",
        "profit_factor",
        "expectancy",
        "win_rate",
        "exposure",
        "fees",
        "buy_and_hold",
    ):
        assert key in m
    page = rep.read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "Monthly returns" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I), "the report must be self-contained"
    assert "<script src" not in page and "<link" not in page
    assert "Per strategy" in page and "macd_crossover" in page

    async def read() -> tuple[list[dict[str, object]], dict[str, object] | None]:
        db = Database(db_url)
        await db.migrate()
        repo = BacktestRepo(db)
        runs = await repo.list()
        one = await repo.get(doc["run_id"])
        await db.close()
        return runs, one

    runs, one = asyncio.run(read())
    assert [r["id"] for r in runs] == [doc["run_id"]] and runs[0]["status"] == "completed"
    assert one is not None and one["metrics"] == doc["metrics"]
    assert [_exact(t) for t in one["trades"]] == [_exact(t) for t in doc["trades"]]  # 4.04 == 4.040 as money
    assert one["strategies"] == ["ema_cross", "macd_crossover"] and len(one["equity"]) == 120
    assert (one["start_time"], one["end_time"]) == (1525132800000, 1525564800000)  # no period given: the data's


def test_missing_data_exits_with_the_download_command(db_url: str) -> None:
    code, text = run(
        [
            "backtest",
            "--symbols",
            "ETHUSDT",
            "--interval",
            "1h",
            "--start",
            "2024-01-01",
            "--end",
            "2024-01-03",
            "--strategy",
            "ema_cross",
            "--no-store",
            "--no-progress",
        ]
    )
    assert code == 2
    assert "roottrading download-data --symbols ETHUSDT --interval 1h --start 2024-01-01 --end 2024-01-03" in text


def test_a_bad_set_is_refused_naming_the_key(db_url: str) -> None:
    code, text = run([*BASE, "--strategy", "ema_cross", "--set", "coordinator.risk_pct=lots", "--no-store"])
    assert code == 2 and "coordinator.risk_pct" in text
    code, text = run([*BASE, "--strategy", "ema_cross", "--set", "max_spread=3", "--no-store"])
    assert code == 2 and "max_spread" in text
    code, text = run([*BASE, "--strategy", "no_such_strategy", "--no-store"])
    assert code == 2 and "no_such_strategy" in text


def test_explicit_period_beyond_the_data_is_refused_then_allowed(db_url: str) -> None:
    args = [*BASE, "--strategy", "ema_cross", "--start", "2018-04-30", "--end", "2018-05-06", "--no-store"]
    code, text = run(args)
    assert code == 2 and "data-quality gate" in text and "24 candle(s) missing at the start" in text
    code, text = run([*args, "--allow-gaps"])
    assert code == 0, text


def test_ctrl_c_writes_the_partial_result_and_exits_130(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C sets the progress bar's stop flag (a SIGINT handler); simulated here at candle 50."""
    from roottrading.backtest import cli

    original = cli._Progress.__call__

    def press_ctrl_c_at_50(self: cli._Progress, done: int, total: int) -> None:
        if done >= 50:
            self.stop_requested = True
        original(self, done, total)

    monkeypatch.setattr(cli._Progress, "__call__", press_ctrl_c_at_50)
    out, rep = tmp_path / "p.json", tmp_path / "p.html"
    # replay reports progress per candle (fast per chunk of candles: tests/backtest/test_fast_progress.py)
    args = [*BASE, "--engine", "replay", "--strategy", "macd_crossover", "--json", str(out), "--report", str(rep)]
    code, text = run(args)
    assert code == 130, text
    doc = json.loads(out.read_text())
    assert doc["interrupted"] is True and doc["candles"] == 50 and rep.is_file()
    assert "interrupted after 50 of 120 candles" in text
