"""Backtest throughput: EMA cross 12/26 on one symbol of seeded synthetic one-minute candles.

Prints candles/s for the chosen engine end to end (services started, every candle through the pipeline,
trades read back, metrics) and, measured in the same run, a baseline: a plain NumPy + TA-Lib EMA-cross loop
(indicators vectorised, then a Python loop that goes long on a cross up and flat on a cross down, with a
0.1 % fee) - what a minimal hand-written backtest costs on this machine. Targets (issue #13): replay
>= 30,000 candles/s, fast >= 5,000,000 candles/s.

    .venv/bin/python benchmarks/backtest.py --engine replay [--candles 20000] [--profile]
    .venv/bin/python benchmarks/backtest.py --engine fast --candles 1000000
    .venv/bin/python benchmarks/backtest.py --case strategies [--days 365]   # every built-in strategy on fast
    .venv/bin/python benchmarks/backtest.py --case memory [--symbols 10] [--days 365]   # peak RSS
    .venv/bin/python benchmarks/backtest.py --engine fast --candles 1000000 --against 70e9f3a   # old vs new

`--against REV` (engine fast, or --case strategies) also runs the fast engine as it was at git revision REV
(roottrading/backtest/fast.py read with `git show`, the rest of the package as it is now), interleaved with the
current one on the same candles, checks that both give the same trades, and prints both rates and their ratio.

The engine figure is steady state: imports and the compiled kernels' load (numba, cached on disk) are paid by a
warm-up run on the first candles first and printed separately. `--case strategies` (target: all 27 strategies
x one symbol x one year of 1m candles on fast in < 30 s) runs each built-in strategy alone on fast (a strategy
fast cannot model is reported as such, not run on replay). `--case memory` (target: 10 symbols x one year
< 2 GB RSS) holds every symbol's year of 1m candles, runs ema_cross on fast over each symbol, and prints the
process's peak RSS (resource.getrusage) and the Python heap peak (tracemalloc, with --tracemalloc: slower).

`--engine fast` runs with a fixed stake of 500 on a balance of 1,000,000 (so the pocket never binds) and the
daily-loss and drawdown rules off (fast falls back to replay as soon as one of them could act, and on a
million candles of a random walk one would); the loss-streak lock stays on (fast models it). The printed line says which engine actually ran.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

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


ROOT = Path(__file__).resolve().parents[1]


def fast_at(rev: str) -> Any:
    """roottrading.backtest.fast as it was at git revision `rev` (its imports resolve to today's package)."""
    src = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:roottrading/backtest/fast.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    name = f"roottrading.backtest._fast_at_{rev.replace('-', '_')}"
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up while the class body runs
    exec(compile(src, f"{rev}:roottrading/backtest/fast.py", "exec"), mod.__dict__)
    return mod


def timed_fast(mod: Any, config: BacktestConfig, candles: list[Any]) -> tuple[Any, float, float]:
    """(result, wall s, CPU s) of one asyncio.run of `mod.run_fast` (what the CLI does per run)."""
    t, cpu = time.perf_counter(), time.process_time()
    r = asyncio.run(mod.run_fast(config, {candles[0].symbol: candles}))
    return r, time.perf_counter() - t, time.process_time() - cpu


def compare_fast(rev: str, config: BacktestConfig, candles: list[Any], repeat: int) -> tuple[float, float]:
    """Old (at `rev`) and current fast engine on the same run, interleaved `repeat` times; the best CPU time
    of each (the least disturbed by other processes). Raises if their trades differ. Returns (old, new) CPU s."""
    from roottrading.backtest import fast as current

    old = fast_at(rev)
    best = {"old": float("inf"), "new": float("inf")}
    walls = {"old": float("inf"), "new": float("inf")}
    trades: dict[str, Any] = {}
    for _ in range(repeat):
        for key, mod in (("old", old), ("new", current)):
            r, wall, cpu = timed_fast(mod, config, candles)
            best[key], walls[key] = min(best[key], cpu), min(walls[key], wall)
            trades[key] = r.trades
    if trades["old"] != trades["new"]:
        raise SystemExit(f"the fast engine at {rev} and now give different trades: parity broken")
    n = len(candles)
    for key, label in (("old", f"fast at {rev}"), ("new", "fast now")):
        print(
            f"  {label:<18} {n / best[key]:>12,.0f} candles per CPU s ({best[key]:.2f} CPU s; "
            f"best wall {walls[key]:.2f}s = {n / walls[key]:,.0f} candles/s)"
        )
    print(f"  speed-up: {best['old'] / best['new']:.2f}x (CPU), same {len(trades['new'])} trades")
    return best["old"], best["new"]


FAST_SETTINGS = {"risk.daily_loss_limit.enabled": "false", "risk.max_drawdown.enabled": "false"}


def make_config(candles: list[Any], engine: str, strategy: str = "ema_cross", **params: Any) -> BacktestConfig:
    fast = engine == "fast"
    return BacktestConfig(
        strategies=(strategy,),
        symbols=(candles[0].symbol,),
        interval="1m",
        start_ms=candles[0].open_time,
        end_ms=candles[-1].close_time + 1,
        # fast: a fixed stake of 500 on a balance the fees of ~14,000 trades per million candles cannot bring
        # near the pocket limit (fast falls back to replay as soon as a pocket could bind)
        balance=Decimal(1_000_000) if fast else Decimal(10_000),
        engine=engine,  # type: ignore[arg-type]
        params={strategy: params} if params else {},
        stake=Decimal(500) if fast else None,
        settings=dict(FAST_SETTINGS) if fast else {},
    )


def warm_up(engine: str) -> float:
    """Imports and the compiled kernels' load/compile, on a short run: seconds (printed apart)."""
    t = time.perf_counter()
    few = synthetic_candles("BTCUSDT", "1m", 3_000, seed=1, start_price=20_000.0)
    asyncio.run(run_engine(make_config(few, engine, fast=12, slow=26), {"BTCUSDT": few}))
    return time.perf_counter() - t


def case_strategies(days: float, against: str | None = None) -> None:
    """Every built-in strategy alone on fast over one symbol: total seconds (target < 30 s for a year).
    With `against`, each strategy also runs on the fast engine at that revision (same trades checked)."""
    from roottrading.backtest.fast import run_fast
    from roottrading.backtest.model import EngineUnavailable
    from roottrading.services.analyzer.engine import AnalyzerEngine, EngineConfig

    n = int(days * 1440)
    candles = synthetic_candles("BTCUSDT", "1m", n, seed=7, start_price=20_000.0)
    names = sorted(AnalyzerEngine(EngineConfig(interval="1m")).registry.names())
    print(f"warm-up (imports, kernels): {warm_up('fast'):.2f}s, not counted")
    total, cpu_total, ran, refused = 0.0, 0.0, 0, []
    old_cpu, new_cpu = 0.0, 0.0
    for name in names:
        if against is not None:
            print(f"  {name}:")
            try:
                o, c = compare_fast(against, make_config(candles, "fast", name), candles, 1)
            except EngineUnavailable as exc:
                refused.append(f"{name}: {exc}")
                continue
            old_cpu, new_cpu = old_cpu + o, new_cpu + c
            continue
        t, cpu = time.perf_counter(), time.process_time()
        try:
            r = asyncio.run(run_fast(make_config(candles, "fast", name), {"BTCUSDT": candles}))
        except EngineUnavailable as exc:
            refused.append(f"{name}: {exc}")
            continue
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
        total, cpu_total, ran = total + wall, cpu_total + cpu, ran + 1
        print(f"  {name:<24} {wall:8.2f}s ({cpu:.2f} CPU s) {n / wall:>12,.0f} candles/s  {len(r.trades)} trades")
    if against is not None:
        print(
            f"{len(names) - len(refused)} strategies x {n:,} 1m candles ({days:g} days): fast at {against} "
            f"{old_cpu:.1f} CPU s, fast now {new_cpu:.1f} CPU s ({old_cpu / new_cpu:.2f}x); one year now "
            f"~{new_cpu * 365 / days:.0f} CPU s (target < 30 s)"
        )
        for line in refused:
            print(f"  not modelled by fast: {line}")
        return
    print(
        f"{ran} of {len(names)} strategies x {n:,} 1m candles ({days:g} days) on fast: {total:.1f}s "
        f"({cpu_total:.1f} CPU s); one year would take ~{total * 365 / days:.0f}s at this rate (target < 30 s)"
    )
    for line in refused:
        print(f"  not modelled by fast: {line}")


def case_memory(symbols: int, days: float, trace: bool) -> None:
    """Peak RSS holding `symbols` years of 1m candles and running ema_cross on fast over each."""
    import resource
    import tracemalloc

    if trace:
        tracemalloc.start()
    n = int(days * 1440)
    t = time.perf_counter()
    data = {f"S{k}USDT": synthetic_candles(f"S{k}USDT", "1m", n, seed=k, start_price=100.0 + k) for k in range(symbols)}
    made = time.perf_counter() - t
    t = time.perf_counter()
    trades, engines = 0, set()
    for sym, cs in data.items():
        r = asyncio.run(run_engine(make_config(cs, "fast", fast=12, slow=26), {sym: cs}))
        trades += len(r.trades)
        engines.add(r.engine)
    wall = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    heap = f", Python heap peak {tracemalloc.get_traced_memory()[1] / 2**20:,.0f} MB (tracemalloc)" if trace else ""
    print(
        f"{symbols} symbols x {n:,} 1m candles ({days:g} days; generated in {made:.1f}s), ema_cross on fast over "
        f"each in {wall:.1f}s ({trades} trades, engine {'/'.join(sorted(engines))}): peak RSS {peak_mb:,.0f} MB{heap} (target < 2048 MB)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", choices=["engine", "strategies", "memory"], default="engine")
    p.add_argument("--engine", choices=["replay", "fast"], default="replay")
    p.add_argument("--candles", type=int, default=20_000)
    p.add_argument("--days", type=float, default=365.0, help="--case strategies/memory: days of 1m candles")
    p.add_argument("--symbols", type=int, default=10, help="--case memory: how many symbols")
    p.add_argument("--tracemalloc", action="store_true", help="--case memory: also trace the Python heap")
    p.add_argument("--profile", action="store_true", help="print the 30 most expensive functions (cProfile)")
    p.add_argument("--against", metavar="REV", help="fast: also run the fast engine of git revision REV, same run")
    p.add_argument("--repeat", type=int, default=3, help="--against: interleaved runs of each (best CPU time)")
    args = p.parse_args()
    configure_logging("ERROR", "console")
    if args.case == "strategies":
        case_strategies(args.days, args.against)
        return
    if args.case == "memory":
        case_memory(args.symbols, args.days, args.tracemalloc)
        return
    print(f"warm-up (imports, kernels): {warm_up(args.engine):.2f}s, not counted")
    candles = synthetic_candles("BTCUSDT", "1m", args.candles, seed=7, start_price=20_000.0)
    close = np.array([c.close for c in candles])
    base_rate, base_trades = baseline(close)
    config = make_config(candles, args.engine, fast=12, slow=26)
    if args.against is not None:
        if args.engine != "fast":
            raise SystemExit("--against compares fast engines: add --engine fast")
        print(f"EMA cross 12/26, {len(candles):,} 1m candles, fast engine at {args.against} vs now:")
        compare_fast(args.against, config, candles, args.repeat)
        print(f"baseline NumPy + TA-Lib EMA-cross loop: {base_rate:,.0f} candles/s ({base_trades} trades)")
        return

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
    target = 5_000_000 if result.engine == "fast" else 30_000  # type: ignore[attr-defined]
    print(f"ratio: {n / wall / base_rate:.3g}x the baseline; {n / wall / target:.3g}x the target ({target:,}/s)")


if __name__ == "__main__":
    main()
