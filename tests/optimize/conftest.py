"""Generated hourly candles in a Parquet folder (the `--data` of download-data), and an isolated environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from roottrading.datasets.synthetic import synthetic_candles
from roottrading.history.download import write_parquet

START = "2024-01-01"  # synthetic_candles' default start
# risk rules that the fast engine hands to replay when they could act: off, so trials stay on `fast`
FAST_SETS = ("risk.strategy_loss_streak.enabled=false", "risk.daily_loss_limit.enabled=false")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "candles"
    write_parquet(folder, "BTCUSDT", "1h", synthetic_candles("BTCUSDT", "1h", n=24 * 40, seed=3, start_price=30000))
    return folder


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'rt.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    return url


def base_args(data: Path, trials: int, *extra: str, end: str = "2024-02-10") -> list[str]:
    args = [
        "optimize",
        "--strategy",
        "ema_cross",
        "--symbols",
        "BTCUSDT",
        "--interval",
        "1h",
        "--data",
        str(data),
        "--start",
        START,
        "--end",
        end,
        "--stake",
        "1000",
        "--trials",
        str(trials),
        "--space",
        "fast=3:15",
        "--space",
        "slow=16:60:2",
        "--space",
        "sl_atr=1:4:0.5",
        "--space",
        "tp_atr=2:8:1",
    ]
    for s in FAST_SETS:
        args += ["--set", s]
    return args + list(extra)
