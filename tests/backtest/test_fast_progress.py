"""The fast engine reports progress and stops on Ctrl-C with a partial result, as the replay engine does."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from decimal import Decimal
from pathlib import Path

import pytest

from roottrading.backtest import fast
from roottrading.backtest.fast import run_fast
from roottrading.backtest.model import BacktestConfig
from roottrading.datasets import synthetic_candles
from tests.backtest.test_cli import BASE, run

N = 6_000


def _setup() -> tuple[BacktestConfig, list]:
    candles = synthetic_candles("BTCUSDT", "1m", N, seed=3, start_price=20_000.0)
    cfg = BacktestConfig(
        strategies=("ema_cross",),
        symbols=("BTCUSDT",),
        interval="1m",
        start_ms=candles[0].open_time,
        end_ms=candles[-1].close_time + 1,
        stake=Decimal(500),
        engine="fast",
        settings={"risk.strategy_loss_streak.enabled": "false"},
    )
    return cfg, candles


def test_progress_is_reported_and_keyboard_interrupt_gives_the_trades_so_far() -> None:
    cfg, candles = _setup()
    seen: list[tuple[int, int]] = []
    full = asyncio.run(run_fast(cfg, {"BTCUSDT": candles}, progress=lambda d, t: seen.append((d, t))))
    assert not full.interrupted and full.candles == N and full.trades
    assert [d for d, _ in seen] == [2_000, 4_000, 6_000] and {t for _, t in seen} == {N}

    def stop_at_4000(done: int, total: int) -> None:
        if done >= 4_000:
            raise KeyboardInterrupt

    part = asyncio.run(run_fast(cfg, {"BTCUSDT": candles}, progress=stop_at_4000))
    assert part.interrupted and part.candles == 4_000 and len(part.equity) == 4_000
    assert any("interrupted after 4000 of 6000" in w for w in part.warnings)
    cut = candles[3_999].close_time
    closed = [t for t in part.trades if t.exit_time is not None]
    assert closed and closed == [t for t in full.trades if t.exit_time is not None and t.exit_time <= cut]
    assert all(t.exit_reason == "end_of_data" for t in part.trades if t.exit_time is None)


def test_ctrl_c_stops_a_fast_cli_run_with_the_partial_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real SIGINT during a fast run: the CLI's handler runs at the engine's next chunk boundary (the engine
    yields to the event loop there) and the run stops with a partial result and exit status 130."""
    from roottrading.backtest import cli

    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/rt.db")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setattr(fast, "CHUNK_MIN", 10)  # 120 bundled candles: a progress step every 10
    original = cli._Progress.__call__
    sent: list[int] = []

    def press_ctrl_c_at_50(self: cli._Progress, done: int, total: int) -> None:
        if done >= 50 and not sent:
            sent.append(done)
            os.kill(os.getpid(), signal.SIGINT)
        original(self, done, total)

    monkeypatch.setattr(cli._Progress, "__call__", press_ctrl_c_at_50)
    out = tmp_path / "p.json"
    args = [*BASE, "--engine", "fast", "--strategy", "ema_cross", "--stake", "500", "--json", str(out)]
    code, text = run([*args, "--set", "risk.strategy_loss_streak.enabled=false", "--no-store"])
    assert code == 130, text
    doc = json.loads(out.read_text())
    assert doc["engine"] == "fast" and doc["interrupted"] is True
    assert 50 < doc["candles"] < 120
    assert f"interrupted after {doc['candles']} of 120 candles" in text
