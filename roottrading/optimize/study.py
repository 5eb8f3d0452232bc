"""Trials: Optuna studies in a relational store, run by local worker processes, resumable after any crash.

Why our own ask/tell loop instead of `study.optimize(n_trials=...)`: with several processes sharing a study,
`n_trials` is per process and `MaxTrialsCallback` overshoots; here a lock around "count, then ask" makes the
study end at exactly N trials. Why resumable this way: every trial's state is in the database the moment it
starts (RUNNING) and ends (COMPLETE/PRUNED/FAIL). After a crash, a trial still RUNNING is one whose work was
lost: `recover` marks it FAIL (flagged `interrupted`, not counted) and enqueues the parameters it had sampled, so it
runs again once; finished trials are never re-run and none is lost.

Memory: a worker holds its window's candles and one backtest at a time; a trial leaves only a few numbers
(its metrics' headline values) in the database, so memory does not grow with the number of trials.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import multiprocessing as mp
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from roottrading.backtest.model import BacktestConfig, BacktestResult
from roottrading.optimize.scoring import constraint_failure, score
from roottrading.optimize.space import Dim

HEADLINE = (
    "net_pnl",
    "trades",
    "closed_trades",
    "sharpe",
    "sortino",
    "calmar",
    "profit_factor",
    "max_drawdown",
    "total_return",
    "win_rate",
)
SAMPLERS = ("tpe", "random", "grid")


class StudyExists(Exception):
    """A study of that name is already in the storage and `--resume` was not given."""


OPTUNA_SCHEMA = "optuna"


def storage_url(database_url: str) -> str:
    """Optuna's storage is synchronous SQLAlchemy: the platform's async URL with a sync driver."""
    url = database_url.replace("sqlite+aiosqlite:", "sqlite:")
    for async_driver in ("postgresql+asyncpg:", "postgres+asyncpg:", "postgresql:", "postgres:"):
        if url.startswith(async_driver):
            url = "postgresql+psycopg:" + url[len(async_driver) :]
    return url


def platform_storage_url(database_url: str) -> str:
    """Where studies live by default: beside the platform's tables, never among them.

    Why not the very same tables' namespace: Optuna versions its schema with Alembic's default
    `alembic_version` table, which the platform's own migrations use too; sharing it, each refuses the
    other's revision ("no longer compatible with the table schema"). PostgreSQL: the same database, schema
    `optuna` (created on first use). SQLite: a file next to the platform's, `NAME.optuna.db`.
    """
    url = storage_url(database_url)
    if url.startswith("sqlite"):
        base, _, query = url.partition("?")
        stem = base[: -len(".db")] if base.endswith(".db") else base
        return f"{stem}.optuna.db" + (f"?{query}" if query else "")
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{OPTUNA_SCHEMA}"


def _create_schema(url: str) -> None:
    """The `optuna` schema of platform_storage_url, before Optuna creates its tables in it."""
    from sqlalchemy import create_engine, text

    base, _, query = url.partition("?")
    rest = "&".join(q for q in query.split("&") if q and not q.startswith("options="))
    engine = create_engine(base + (f"?{rest}" if rest else ""))
    try:
        with engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {OPTUNA_SCHEMA}"))
    finally:
        engine.dispose()


def make_storage(url: str, keep: int | None = None) -> Any:
    """The RDB storage; with `keep`, wrapped in a cache holding at most that many finished trials (bounded.py)."""
    rdb = _rdb_storage(url)
    if keep is None:
        return rdb
    from roottrading.optimize.bounded import BoundedCachedStorage

    return BoundedCachedStorage(rdb, keep)


def _rdb_storage(url: str) -> Any:
    import optuna

    if not url.startswith("sqlite"):
        if f"search_path%3D{OPTUNA_SCHEMA}" in url:
            _create_schema(url)
        return optuna.storages.RDBStorage(url)
    # several worker processes write to one SQLite file: wait for the lock; WAL + synchronous=NORMAL keeps a
    # committed trial durable across a process crash (SIGKILL) without an fsync per write (10 ms each)
    storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    from sqlalchemy import event

    @event.listens_for(storage.engine, "connect")
    def _pragmas(conn: Any, _record: Any) -> None:
        cur = conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    storage.engine.dispose()  # connections opened before the listener: reopen with the pragmas
    return storage


def make_sampler(name: str, dims: Sequence[Dim], seed: int | None) -> Any:
    import optuna

    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler({d.name: d.grid() for d in dims}, seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


@dataclass(frozen=True)
class Job:
    """Everything a worker process needs (picklable): one study over one training period."""

    config: BacktestConfig  # strategy, symbol, data, stake, settings; the period is the study's
    dims: tuple[Dim, ...]
    objective: str
    min_trades: int
    max_drawdown: float | None
    storage: str
    study_name: str
    n_trials: int
    sampler: str = "tpe"
    seed: int | None = None
    database_url: str | None = None
    fallback: str = "replay"  # "replay": run what `fast` cannot model on replay; "skip": prune it
    history: int | None = 1000  # finished trials the sampler sees and a process holds (bounded.py); None: all


def open_study(job: Job, *, resume: bool, create: bool = True) -> Any:
    import optuna

    storage = make_storage(job.storage, keep=None if job.sampler == "grid" else job.history)
    sampler = make_sampler(job.sampler, job.dims, job.seed)
    try:
        study = optuna.load_study(study_name=job.study_name, storage=storage, sampler=sampler)
    except KeyError:
        if not create:
            raise
        return optuna.create_study(study_name=job.study_name, storage=storage, sampler=sampler, direction="maximize")
    if not resume:
        raise StudyExists(
            f"study {job.study_name!r} already exists in {job.storage}; pass --resume to continue "
            "it, or choose another --study-name"
        )
    return study


def recover(study: Any) -> list[int]:
    """Re-queue the trials a crash left RUNNING (call before any worker starts). Returns their numbers."""
    import optuna

    lost = []
    storage = study._storage
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number}, skip_if_exists=False)
        lost.append(t.number)
    return lost


_COUNT = """
SELECT COUNT(*) FROM trials t
WHERE t.study_id = :sid AND (
  t.state IN ('COMPLETE', 'PRUNED', 'RUNNING', 'WAITING')
  OR (t.state = 'FAIL' AND NOT EXISTS (
    SELECT 1 FROM trial_user_attributes a WHERE a.trial_id = t.trial_id AND a.key = 'interrupted')))
"""


def counted_trials(study: Any) -> int:
    """Trials that count toward N: finished, running or queued; not those a crash interrupted (re-queued).
    One COUNT query, so asking for the next trial costs the same at trial 10 as at trial 10,000."""
    from sqlalchemy import text

    storage = getattr(study._storage, "_backend", study._storage)  # optuna wraps RDBStorage in a cache
    with storage.engine.connect() as conn:
        return int(conn.execute(text(_COUNT), {"sid": study._study_id}).scalar_one())


def evaluate(job: Job, prepared: Any, params: dict[str, Any], engine: str = "fast") -> BacktestResult:
    """One backtest of the job's strategy with `params` on the prepared candles."""
    from roottrading.backtest.runner import run_engine

    name = job.config.strategies[0]
    config = replace(prepared.config, params={name: dict(params)}, engine=engine)
    return asyncio.run(run_engine(config, prepared.candles, overrides=prepared.overrides))


def _valid(job: Job, params: dict[str, Any]) -> str | None:
    """The strategy's own validation (ranges and cross-parameter rules such as fast < slow)."""
    from roottrading.strategies.params import ParamError

    try:
        strategy_class(job.config.strategies[0])(**params)
    except ParamError as exc:
        return str(exc)
    return None


@functools.cache
def strategy_class(name: str) -> Any:
    from roottrading.config import load_settings
    from roottrading.strategies.loader import load_strategies

    return load_strategies(load_settings().strategies_dir).strategies[name]


def run_trial(job: Job, prepared: Any, trial: Any) -> tuple[float | None, dict[str, Any]]:
    """Suggest, backtest, score. Returns (value or None = pruned, user attrs)."""
    return score_params(job, prepared, suggest(job, trial))


def suggest(job: Job, trial: Any) -> dict[str, Any]:
    return {d.name: d.suggest(trial) for d in job.dims}


def score_params(job: Job, prepared: Any, params: dict[str, Any]) -> tuple[float | None, dict[str, Any]]:
    """Backtest and score one parameter set. Returns (value or None = pruned, user attrs)."""
    invalid = _valid(job, params)
    if invalid:
        return None, {"reason": f"invalid parameters: {invalid}"}
    if job.fallback == "skip":
        from roottrading.backtest.fast import run_fast
        from roottrading.backtest.model import EngineUnavailable

        config = replace(prepared.config, params={job.config.strategies[0]: params})
        try:
            result = asyncio.run(run_fast(config, prepared.candles, overrides=prepared.overrides))
        except EngineUnavailable as exc:
            return None, {"reason": f"fast cannot model it: {exc}"}
    else:
        result = evaluate(job, prepared, params)
    attrs: dict[str, Any] = {"metrics": {k: result.metrics.get(k) for k in HEADLINE}, "engine": result.engine}
    if result.fallback:
        attrs["fallback"] = result.fallback
    failed = constraint_failure(result.metrics, job.min_trades, job.max_drawdown)
    if failed:
        attrs["reason"] = failed
        return None, attrs
    value = score(result.metrics, job.objective)
    if value is None:
        attrs["reason"] = f"{job.objective} undefined (no trades or no variation)"
    return value, attrs


def prepare_window(job: Job) -> Any:
    from roottrading.backtest.runner import prepare

    cfg = replace(job.config, allow_gaps=True)  # the parent ran the data-quality gate on the whole period
    return asyncio.run(prepare(cfg, database_url=job.database_url, explicit_range=True))


def work(job: Job, lock: Any, on_trial: Callable[[int], None] | None = None) -> int:
    """Run trials until the study holds `n_trials` counted trials. Returns how many this call ran."""
    import optuna

    prepared = prepare_window(job)
    study = open_study(job, resume=True, create=False)
    ran = 0
    while True:
        with lock:
            if counted_trials(study) >= job.n_trials:
                return ran
            trial = study.ask()
        value, attrs = run_trial(job, prepared, trial)
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, value)
        ran += 1
        if on_trial is not None:
            on_trial(trial.number)


def quiet() -> None:
    import logging

    import optuna

    from roottrading.runtime.logsetup import configure_logging

    configure_logging("ERROR", "console")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("optuna").setLevel(logging.ERROR)


def _worker(job: Job, lock: Any, ran: Any) -> None:
    quiet()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: the trial in progress stays RUNNING; --resume redoes it
        n = work(job, lock)
        with ran.get_lock():
            ran.value += n


def run_study(job: Job, workers: int) -> int:
    """Run the study to `n_trials` on `workers` local processes (1: in this process). Returns trials run."""
    if workers <= 1:
        quiet()
        return work(job, mp.get_context("spawn").Lock())
    ctx = mp.get_context("spawn")  # never fork a process that may hold threads (numba, SQLAlchemy pools)
    lock = ctx.Lock()
    ran = ctx.Value("i", 0)
    procs = [ctx.Process(target=_worker, args=(job, lock, ran), daemon=True) for _ in range(workers)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            p.join(timeout=30)
        raise
    bad = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if bad:
        raise RuntimeError(f"{len(bad)} worker process(es) failed (exit codes {bad}); --resume continues the study")
    return int(ran.value)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
