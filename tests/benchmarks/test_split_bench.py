"""benchmarks/split.py in a tiny configuration, so the benchmark cannot rot: real service processes on Redis and
PostgreSQL, every signal becomes an order in both deployments, every flooded candle is handled."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_split_benchmark_runs_end_to_end(redis_url: str, postgres_url: str) -> None:
    admin = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    symbols, candles = 2, 5
    cmd = [sys.executable, str(ROOT / "benchmarks/split.py"), "--signals", "5", "--warmup", "2"]
    cmd += ["--symbols", str(symbols), "--candles", str(candles), "--history", "60", "--repeat", "1"]
    cmd += ["--redis", redis_url, "--pg-admin", admin, "--no-check"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    for label in ("one process (memory bus)", "split (3 procs, Redis)"):
        assert re.search(
            re.escape(label) + r"\s*: signal -> order sent p50\s+[\d.]+ ms .*\(5 signals, 0 without an order\)", text
        ), text
    assert re.search(r"split/one-process: p50 [\d.]+x\s+p99 [\d.]+x", text), text
    runs = re.findall(
        r"run 1: (\d) analyzer\(s\)\s+\d+ candles/s\s+cpu\s+[\d.]+ ms/candle\s+symbols per instance \[([\d, ]+)\]"
        r"\s+candles handled per instance \[([\d, ]+)\]",
        text,
    )
    assert [int(k) for k, _, _ in runs] == [1, 2], text
    for _, per_symbols, per_candles in runs:
        assert sum(int(x) for x in per_symbols.split(",")) == symbols
        # every flooded candle (plus each symbol's seed) handled; a redelivery could only add
        assert sum(int(x) for x in per_candles.split(",")) >= symbols * (candles + 1), text
    assert re.search(r"analyzer throughput .* ratio [\d.]+x", text), text
