"""`--cluster ADDRESS` / `--cluster local:N`: trials as tasks on a Dask distributed cluster.

Why Dask distributed (not Ray): it is pure Python on pip (no separate runtime, wheels for every platform the
platform runs on), its scheduler and workers are two commands (`dask scheduler`, `dask worker ADDRESS`) on any
machine, it re-runs a task whose worker died on another worker by itself, and it adds ~1 ms per task, far
below a backtest. Ray would bring its own object store and raylet processes for no gain here.

How: this process (the driver) owns the study in the relational storage. It asks Optuna for a trial (RUNNING in
the database), sends its parameters to the cluster as one task, and tells the result when the task returns.
Keeping asking and telling in one process makes "exactly N trials" trivial across any number of machines
(no distributed lock), and the sampler sees every result. A worker that dies mid-trial loses nothing: the
scheduler gives the task to another worker (up to `distributed.scheduler.allowed-failures` times), and the
trial, still RUNNING in the database, is told once, when a worker finishes it. If the driver itself dies,
the trials it had in flight stay RUNNING and `--resume` re-queues them (study.recover), as without a cluster.

Workers need the candles: `--data` must be readable on every worker (a shared path, or `store` with a
DATABASE_URL they can reach). Each worker process prepares a window once and keeps it for the next tasks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from roottrading.optimize.study import Job, counted_trials, open_study, quiet

_PREPARED: dict[tuple[Any, ...], Any] = {}  # per worker process: the last windows prepared (bounded below)


def _window_key(job: Job) -> tuple[Any, ...]:
    c = job.config
    return (c.strategies, c.symbols, c.interval, c.start_ms, c.end_ms, c.data, tuple(sorted(c.settings.items())))


def cluster_trial(job: Job, params: dict[str, Any]) -> tuple[float | None, dict[str, Any]]:
    """One trial on a worker: the window's candles (prepared once per worker), a backtest, its score."""
    from roottrading.optimize.study import prepare_window, score_params

    key = _window_key(job)
    prepared = _PREPARED.get(key)
    if prepared is None:
        quiet()
        _PREPARED.clear()  # one window at a time per worker: memory stays one window's candles
        prepared = _PREPARED[key] = prepare_window(job)
    return score_params(job, prepared, params)


@contextlib.contextmanager
def connect(address: str) -> Iterator[Any]:
    """A client of the cluster at `address` (tcp://host:8786), or of a local one for `local:N` (N worker
    processes, one thread each: a backtest holds the GIL)."""
    from distributed import Client, LocalCluster

    if address.startswith("local:"):
        n = int(address.split(":", 1)[1])
        if n < 1:
            raise ValueError("--cluster local:N needs N >= 1")
        with (
            LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    with Client(address, timeout="30s") as client:
        yield client


def workers_of(client: Any) -> int:
    return max(1, sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values()))


def run_study_cluster(job: Job, client: Any, on_trial: Callable[[int], None] | None = None) -> int:
    """Run the study to `n_trials` on the cluster; returns the trials told by this call."""
    import optuna
    from distributed import as_completed

    from roottrading.optimize.study import _valid, suggest

    study = open_study(job, resume=True, create=False)
    in_flight = 2 * workers_of(client)  # keep every worker busy while the driver tells and asks
    pending: dict[Any, Any] = {}
    futures = as_completed()
    ran = 0

    def submit() -> bool:
        if counted_trials(study) >= job.n_trials:
            return False
        trial = study.ask()
        params = suggest(job, trial)
        invalid = _valid(job, params)  # refused by the strategy: no task needed
        if invalid:
            trial.set_user_attr("reason", f"invalid parameters: {invalid}")
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return True
        fut = client.submit(cluster_trial, job, params, pure=False, key=f"trial-{job.study_name}-{trial.number}")
        pending[fut.key] = trial
        futures.add(fut)
        return True

    while len(pending) < in_flight and submit():
        pass
    for fut in futures:
        trial = pending.pop(fut.key)
        value, attrs = fut.result()  # a worker lost mid-task: the scheduler already re-ran it elsewhere
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, value)
        ran += 1
        fut.release()
        if on_trial is not None:
            on_trial(trial.number)
        while len(pending) < in_flight and submit():
            pass
    return ran
