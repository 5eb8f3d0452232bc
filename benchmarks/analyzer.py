"""Analyzer throughput and latency: all built-in strategies on many symbols.

Prints candles/s for (a) the in-process engine and (b) the worker pool (one process per core), and the
candle-in -> signals-out p50/p99 latency for one symbol through the worker pool. Baseline, measured in the
same run: the same candles through the engine with a single trivial strategy, which isolates the framework
cost from the strategies' own cost. Targets (issue #4): >= 2000 candles/s, p99 < 5 ms.

`--universe N` (issue #16: a live universe of 200 symbols on 1m candles) measures what a minute's close does:
the N candles of one minute arrive together and go through the worker pool at once; printed are each
candle's latency from the minute's arrival to its signals (queueing behind the other symbols included) and
the one-symbol latency measured in the same run beside it.

    .venv/bin/python benchmarks/analyzer.py [--symbols 50] [--candles 40] [--workers 2] [--universe 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roottrading.datasets import synthetic_candles
from roottrading.services.analyzer.engine import AnalyzerEngine, EngineConfig
from roottrading.services.analyzer.workers import WorkerPool


def market(symbols: int, n: int) -> tuple[list, list]:
    """History to warm each window, then `n` fresh candles per symbol, interleaved by time."""
    warm, live = [], []
    for i in range(symbols):
        cs = synthetic_candles(f"S{i:03d}USDT", "1m", 900 + n, seed=i, start_price=50.0 + i)
        warm.append(cs[:900])
        live.extend(cs[900:])
    live.sort(key=lambda c: (c.open_time, c.symbol))
    return warm, live


def bench_engine(config: EngineConfig, warm: list, live: list) -> tuple[float, float]:
    """(candles/s wall clock, CPU microseconds per candle). CPU time is what other processes on a loaded
    machine do not inflate much: 2 idle cores give at most 2 * 1e6 / cpu_us candles/s."""
    eng = AnalyzerEngine(config)
    for cs in warm:
        eng.warm(cs)
    t, cpu = time.perf_counter(), time.process_time()
    for c in live:
        eng.on_candle(c)
    return len(live) / (time.perf_counter() - t), (time.process_time() - cpu) * 1e6 / len(live)


async def bench_pool(config: EngineConfig, workers: int, warm: list, live: list) -> tuple[float, list[float]]:
    pool = WorkerPool(config, workers)
    await pool.start()
    try:
        for cs in warm:
            await pool.warm(cs[0].symbol, cs)
        t = time.perf_counter()
        await asyncio.gather(*(pool.on_candle(c) for c in live))  # symbols partitioned across workers
        rate = len(live) / (time.perf_counter() - t)
        one = [c for c in live if c.symbol == live[0].symbol]
        lat = []
        for c in one:  # one symbol, one candle at a time: the latency a trader sees
            t0 = time.perf_counter()
            await pool.on_candle(
                c.__class__(
                    **{
                        **{f: getattr(c, f) for f in c.__struct_fields__},
                        "open_time": c.open_time + 10**9,
                        "close_time": c.close_time + 10**9,
                    }
                )
            )
            lat.append((time.perf_counter() - t0) * 1000)
        return rate, lat
    finally:
        await pool.stop()


async def bench_minute_bursts(config: EngineConfig, workers: int, warm: list, live: list) -> list[float]:
    """Each minute's candles of every symbol submitted at once (as the gateway hands them over when the
    minute closes); each candle's latency from that moment to its signals, in ms."""
    pool = WorkerPool(config, workers)
    await pool.start()
    try:
        for cs in warm:
            await pool.warm(cs[0].symbol, cs)
        minutes: dict[int, list] = {}
        for c in live:
            minutes.setdefault(c.open_time, []).append(c)
        lat: list[float] = []

        async def timed(c: object, t0: float) -> None:
            await pool.on_candle(c)  # type: ignore[arg-type]
            lat.append((time.perf_counter() - t0) * 1000)

        for batch in minutes.values():
            t0 = time.perf_counter()
            await asyncio.gather(*(timed(c, t0) for c in batch))
        return sorted(lat)
    finally:
        await pool.stop()


def _p(values: list[float], q: float) -> float:
    return values[max(0, int(len(values) * q) - 1)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=50)
    ap.add_argument("--candles", type=int, default=40, help="fresh candles per symbol")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--universe", type=int, default=0, help="also measure minute bursts over this many symbols")
    a = ap.parse_args()
    warm, live = market(a.symbols, a.candles)
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    n_strats = len(AnalyzerEngine(EngineConfig()).registry.names())
    load = Path("/proc/loadavg").read_text().split()[0] if os.path.exists("/proc/loadavg") else "?"
    base, _ = bench_engine(EngineConfig(enabled=["roc_threshold"]), warm, live)
    inproc, cpu_us = bench_engine(EngineConfig(), warm, live)
    rate, lat = asyncio.run(bench_pool(EngineConfig(), a.workers, warm, live))
    lat.sort()
    p99 = lat[max(0, int(len(lat) * 0.99) - 1)]
    print(
        f"symbols={a.symbols} candles={len(live)} strategies={n_strats} workers={a.workers} cores={os.cpu_count()}"
        f" loadavg(1m) at start={load}"
    )
    print(f"baseline (1 trivial strategy, in-process): {base:10.0f} candles/s")
    print(
        f"all strategies, in-process:                {inproc:10.0f} candles/s  ({inproc / base:.3f}x baseline)"
        f"  cpu {cpu_us:.0f} us/candle"
    )
    print(
        f"all strategies, {a.workers} worker processes:        {rate:10.0f} candles/s  ({rate / inproc:.2f}x in-process)"
        f"  target >= 2000: {'PASS' if rate >= 2000 else 'FAIL'}"
    )
    print(
        f"one symbol candle->signals latency: p50 {statistics.median(lat):.2f} ms  p99 {p99:.2f} ms"
        f"  target p99 < 5 ms: {'PASS' if p99 < 5 else 'FAIL'}"
    )
    if a.universe:
        u_warm, u_live = market(a.universe, min(a.candles, 10))
        burst = asyncio.run(bench_minute_bursts(EngineConfig(), a.workers, u_warm, u_live))
        print(
            f"universe of {a.universe} symbols, each minute's {a.universe} candles at once through {a.workers} workers:"
            f" candle->signals p50 {_p(burst, 0.5):.1f} ms  p99 {_p(burst, 0.99):.1f} ms  max {burst[-1]:.1f} ms"
            f"  ({_p(burst, 0.99) / p99:.0f}x the one-symbol p99 above)  target p99 < 5 ms:"
            f" {'PASS' if _p(burst, 0.99) < 5 else 'FAIL'}"
        )


if __name__ == "__main__":
    main()
