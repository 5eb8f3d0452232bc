"""Backtest throughput: EMA cross 12/26 on one symbol of seeded synthetic one-minute candles.

Prints candles/s for the chosen engine end to end (services started, every candle through the pipeline,
trades read back, metrics) and, measured in the same run, a baseline: a plain NumPy + TA-Lib EMA-cross loop
(indicators vectorised, then a Python loop that goes long on a cross up and flat on a cross down, with a
0.1 % fee) - what a minimal hand-written backtest costs on this machine. Targets (issue #13): replay
>= 30,000 candles/s, fast >= 5,000,000 candles/s.

    .venv/bin/python benchmarks/backtest.py --engine replay [--candles 20000] [--profile]
    .venv/bin/python benchmarks/backtest.py --engine fast --candles 1000000

`--engine fast` runs with a fixed stake of 500 and the daily-loss and drawdown rules off (fast falls back to
replay as soon as one of them could act, and on a million candles of a random walk one would); the
loss-streak lock stays on (fast models it). The printed line says which engine actually ran.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import talib

from roottrading.backtest.model import BacktestConfig
from roottrading.backtest.runner import run_engine
from roottrading.datasets import synthetic_candles
from roottrading.runtime.logsetup import configure_logging


def baseline(close: np.ndarray, fee: float = 0.001) -> tuple[float, int]:
    """(candles/s, trades) of a NumPy + TA-Lib EMA 12/26 cross, long only."""
    t = time.perf_counter()
    fast, slow = talib.EMA(close, 12), talib.EMA(close, 26)
    above = fast > slow
    cash, qty, trades = 10_000.0, 0.0, 0
    for i in range(27, len(close)):
        if above[i] and not above[i - 1] and qty == 0:
            qty, cash = cash * (1 - fee) / close[i], 0.0
            trades += 1
        elif not above[i] and above[i - 1] and qty > 0:
            cash, qty = qty * close[i] * (1 - fee), 0.0
    return len(close) / (time.perf_counter() - t), trades


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--engine", choices=["replay", "fast"], default="replay")
    p.add_argument("--candles", type=int, default=20_000)
    p.add_argument("--profile", action="store_true", help="print the 30 most expensive functions (cProfile)")
    args = p.parse_args()
    configure_logging("ERROR", "console")
    candles = synthetic_candles("BTCUSDT", "1m", args.candles, seed=7, start_price=20_000.0)
    close = np.array([c.close for c in candles])
    base_rate, base_trades = baseline(close)
    config = BacktestConfig(
        strategies=("ema_cross",),
        symbols=("BTCUSDT",),
        interval="1m",
        start_ms=candles[0].open_time,
        end_ms=candles[-1].close_time + 1,
        balance=Decimal(10_000),
        engine=args.engine,
        params={"ema_cross": {"fast": 12, "slow": 26}},
        **(
            {
                "stake": Decimal(500),
                "settings": {
                    "risk.daily_loss_limit.enabled": "false",
                    "risk.max_drawdown.enabled": "false",
                },
            }
            if args.engine == "fast"
            else {}
        ),
    )

    async def run() -> object:
        return await run_engine(config, {"BTCUSDT": candles}, notice=lambda s: print(f"note: {s}"))

    t, cpu = time.perf_counter(), time.process_time()
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        result = prof.runcall(asyncio.run, run())
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
    else:
        result = asyncio.run(run())
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    n = result.candles  # type: ignore[attr-defined]
    print(
        f"{result.engine} engine: {n:,} candles in {wall:.2f}s end to end = {n / wall:,.0f} candles/s "  # type: ignore[attr-defined]
        f"({n / cpu:,.0f} per CPU second, which other processes on a loaded machine inflate less; "
        f"{len(result.trades)} trades)"  # type: ignore[attr-defined]
    )
    print(f"baseline NumPy + TA-Lib EMA-cross loop: {base_rate:,.0f} candles/s ({base_trades} trades)")


if __name__ == "__main__":
    main()
