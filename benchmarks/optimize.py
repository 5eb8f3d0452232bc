"""Optimisation throughput, cluster scaling and memory (issue 14), each against a baseline measured in this run.

1. Throughput: `ema_cross` trials over one year of seeded synthetic 1m candles (525,600), `fast` engine, random
   sampler, fixed stake, on local worker processes; baseline: the same study on ONE process.
   Target: 1,000 trials < 3 minutes on this 2-core machine.
2. Cluster: the same kind of study on a Dask LocalCluster with 2 workers vs 1 worker (trials/s).
   Target: >= 1.7x.
3. Memory: a study of `--trials-memory` trials on tiny data in this process, RSS sampled as it runs, with the
   bounded trial cache (`--sampler-history`) vs Optuna's own unbounded cache (the baseline). The growth per
   trial over the second half of each run is printed, and the 10,000-trial peak is extrapolated from it
   (measured directly with `--trials-memory 10000`, which takes long).

    .venv/bin/python benchmarks/optimize.py                     # defaults: small counts, figures scaled
    .venv/bin/python benchmarks/optimize.py --trials 1000 --cluster-trials 200 --trials-memory 10000

Counts below the targets' are scaled linearly (trials/s is what is measured) and the output says so.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import os
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil

from roottrading.backtest.model import BacktestConfig
from roottrading.datasets.synthetic import synthetic_candles
from roottrading.history.download import write_parquet
from roottrading.optimize.space import build_space
from roottrading.optimize.study import Job, open_study, quiet, run_study, strategy_class, work

SETS = {
    "risk.daily_loss_limit.enabled": "false",
    "risk.max_drawdown.enabled": "false",
    "risk.strategy_loss_streak.enabled": "false",
}


def make_data(folder: Path, interval: str, n: int) -> tuple[int, int]:
    cs = synthetic_candles("BTCUSDT", interval, n=n, seed=7, start_price=20_000.0)
    write_parquet(folder, "BTCUSDT", interval, cs)
    return cs[0].open_time, cs[-1].close_time + 1


def job(
    folder: Path,
    interval: str,
    span: tuple[int, int],
    storage: str,
    name: str,
    n: int,
    history: int | None,
    sampler: str = "random",
) -> Job:
    cfg = BacktestConfig(
        strategies=("ema_cross",),
        symbols=("BTCUSDT",),
        interval=interval,
        start_ms=span[0],
        end_ms=span[1],
        data=str(folder),
        balance=Decimal(10_000),
        engine="fast",
        stake=Decimal(100),
        settings=SETS,
    )
    dims = build_space(strategy_class("ema_cross").param_specs(), [])
    return Job(
        config=cfg,
        dims=tuple(dims),
        objective="sharpe",
        min_trades=1,
        max_drawdown=None,
        storage=storage,
        study_name=name,
        n_trials=n,
        sampler=sampler,
        seed=1,
        fallback="skip",
        history=history,
    )


def cpu_s() -> float:
    """CPU seconds of this process and of its finished (joined) children."""
    c = psutil.Process().cpu_times()
    return c.user + c.system + c.children_user + c.children_system


def _worker_cpu() -> float:
    c = psutil.Process().cpu_times()
    return c.user + c.system


def timed(fn: object, *args: object) -> tuple[int, float, float]:
    """(trials run, wall seconds, CPU seconds of this process and its joined children)."""
    t, c = time.perf_counter(), cpu_s()
    ran = fn(*args)  # type: ignore[operator]
    return int(ran), time.perf_counter() - t, cpu_s() - c


def throughput(folder: Path, span: tuple[int, int], db: str, n: int, workers: int) -> None:
    print(f"1. throughput: {n} trials of ema_cross on 525,600 1m candles (fast engine, random sampler)")
    rates: dict[int, float] = {}
    cpus: dict[int, float] = {}
    for w in (1, workers):
        j = job(folder, "1m", span, db, f"tp-{w}", n, 1000)
        open_study(j, resume=False)
        ran, wall, cpu = timed(run_study, j, w)
        rates[w] = ran / wall
        cpus[w] = cpu / max(1, ran)
        print(
            f"   {w} process(es): {ran} trials in {wall:.1f}s = {rates[w]:.3f} trials/s; "
            f"{cpus[w]:.2f} CPU s per trial (data loading included)"
        )
    best = rates[workers]
    print(
        f"   -> 1,000 trials would take {1000 / best / 60:.1f} min with {workers} processes (target < 3 min; "
        f"{'scaled from ' + str(n) + ' trials' if n < 1000 else 'measured'}); {workers} vs 1 process: "
        f"{best / rates[1]:.2f}x"
    )
    print(
        f"   -> from CPU time (what an idle machine would give): {workers} cores x 1 / {cpus[workers]:.2f} s = "
        f"{workers / cpus[workers]:.2f} trials/s, 1,000 trials in {1000 * cpus[workers] / workers / 60:.1f} min"
    )


def cluster(folder: Path, span: tuple[int, int], db: str, n: int) -> None:
    from distributed import Client, LocalCluster

    from roottrading.optimize.cluster import run_study_cluster

    print(f"2. cluster: {n} trials per run on a Dask LocalCluster (processes, 1 thread each)")
    rates = {}
    for w in (1, 2):
        j = job(folder, "1m", span, db, f"cl-{w}", n, 1000)
        open_study(j, resume=False)
        with (
            LocalCluster(n_workers=w, threads_per_worker=1, processes=True, dashboard_address=":0") as lc,
            Client(lc) as client,
        ):
            client.submit(os.getpid, pure=False).result()  # workers up before the clock starts
            before = sum(client.run(_worker_cpu).values())
            ran, wall, cpu = timed(run_study_cluster, j, client)
            cpu += sum(client.run(_worker_cpu).values()) - before
        rates[w] = ran / wall
        print(
            f"   {w} worker(s): {ran} trials in {wall:.1f}s = {rates[w]:.3f} trials/s; "
            f"{cpu / max(1, ran):.2f} CPU s per trial (workers + driver)"
        )
    print(f"   -> 2 workers vs 1 worker: {rates[2] / rates[1]:.2f}x (target >= 1.7x)")


def memory(tmp: Path, n: int, history: int) -> None:
    proc = psutil.Process()
    folder = tmp / "tiny"
    span = make_data(folder, "1h", 240)
    print(f"3. memory: {n} TPE trials on 240 1h candles in this process (RSS sampled every {max(1, n // 20)} trials)")
    slopes, peaks = {}, {}
    for label, keep in (
        (f"bounded (--sampler-history {history})", history),
        ("unbounded Optuna cache (baseline)", None),
    ):
        gc.collect()
        j = job(folder, "1h", span, f"sqlite:///{tmp}/mem-{keep}.db", "mem", n, keep, sampler="tpe")
        open_study(j, resume=False)
        samples: list[tuple[int, int]] = []

        def sample(number: int, samples: list[tuple[int, int]] = samples) -> None:
            if number % max(1, n // 20) == 0:
                samples.append((number, proc.memory_info().rss))

        work(j, mp.get_context("spawn").Lock(), sample)
        half = [s for s in samples if s[0] >= n // 2]
        (n0, r0), (n1, r1) = half[0], half[-1]
        slopes[label] = (r1 - r0) / max(1, n1 - n0)
        peaks[label] = max(r for _, r in samples)
        print(
            f"   {label}: RSS {samples[0][1] / 2**20:.0f} MB at trial {samples[0][0]}, {r1 / 2**20:.0f} MB at "
            f"trial {n1}; growth over the second half {slopes[label] / 1024:.1f} KB/trial"
        )
    for label in slopes:
        at_10k = peaks[label] + max(0.0, slopes[label]) * max(0, 10_000 - n)
        how = "measured" if n >= 10_000 else f"extrapolated from {n} trials at that growth"
        print(f"   -> {label}: peak RSS of a 10,000-trial study ~{at_10k / 2**20:.0f} MB ({how})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=24, help="throughput study size (target: 1000)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cluster-trials", type=int, default=16)
    p.add_argument("--trials-memory", type=int, default=1000)
    p.add_argument("--sampler-history", type=int, default=200)
    p.add_argument("--only", choices=["throughput", "cluster", "memory"], default=None)
    args = p.parse_args()
    quiet()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        os.environ.setdefault("DATA_DIR", str(tmp))
        if args.only in (None, "memory"):
            memory(tmp, args.trials_memory, args.sampler_history)
        if args.only in (None, "throughput", "cluster"):
            t = time.perf_counter()
            year = make_data(tmp / "year", "1m", 525_600)
            print(f"   (one year of 1m candles generated and written in {time.perf_counter() - t:.0f}s)")
            db = f"sqlite:///{tmp}/tp.db"
            if args.only in (None, "throughput"):
                throughput(tmp / "year", year, db, args.trials, args.workers)
            if args.only in (None, "cluster"):
                cluster(tmp / "year", year, db, args.cluster_trials)
    print(f"machine: {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f} (other jobs inflate wall times)")


if __name__ == "__main__":
    main()
