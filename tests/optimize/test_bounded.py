"""Memory bounded by the sampler history, not the trial count: the trial cache, the resumed study's first read,
and the per-window readers (history, counts, Sharpe statistics, streamed JSON rows) never hold every trial."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest

from roottrading.optimize import trials
from roottrading.optimize.bounded import BoundedCachedStorage
from roottrading.optimize.study import make_storage


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5, 5)
    trial.set_user_attr("metrics", {"sharpe": -((x - 1) ** 2)})
    return -((x - 1) ** 2)


def _study(url: str, keep: int) -> optuna.Study:
    storage = make_storage(url, keep=keep)
    assert isinstance(storage, BoundedCachedStorage)
    return optuna.create_study(
        study_name="m",
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=1, n_startup_trials=5),
        load_if_exists=True,
    )


def test_the_cache_holds_at_most_the_history_and_tpe_still_finds_the_optimum(tmp_path: Path) -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    url = f"sqlite:///{tmp_path / 'o.db'}"
    study = _study(url, keep=20)
    held = []
    for _ in range(150):
        study.optimize(_objective, n_trials=1)
        held.append(study._storage.cached_trials(study._study_id))
    assert max(held) <= 20 + 2 + 1  # keep, the eviction batch (10 %), the trial being asked
    assert study.best_value > -0.05  # the best trials are kept: the search still converges
    assert len(study.get_trials()) <= 22 and trials.state_counts(study) == {"COMPLETE": 150}

    resumed = _study(url, keep=20)  # a new process: the first read is bounded too (no full load)
    resumed.get_trials()
    assert resumed._storage.cached_trials(resumed._study_id) <= 20
    best = {t.number for t in resumed.get_trials()}
    assert study.best_trial.number in best


def test_window_readers_are_exact_without_loading_the_trials(tmp_path: Path) -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = _study(f"sqlite:///{tmp_path / 'o.db'}", keep=10)
    study.optimize(_objective, n_trials=60)
    every = optuna.load_study(study_name="m", storage=make_storage(f"sqlite:///{tmp_path / 'o.db'}")).get_trials()
    values = [t.value for t in every]

    rows = list(trials.iter_rows(study, page=7))
    assert [r["number"] for r in rows] == list(range(60)) and rows[3]["metrics"]["sharpe"] == values[3]

    points = trials.history(study, max_points=6)
    assert len(points) == 6 and max(v for _, v in points) == max(values)  # each bucket keeps its best
    assert trials.history(study) == [(i, v) for i, v in enumerate(values)]

    n, var = trials.sharpe_stats(study, per_period=2.0)
    xs = [v / 2 for v in values]
    mean = sum(xs) / len(xs)
    assert n == 60 and var == pytest.approx(sum((x - mean) ** 2 for x in xs) / 59)

    out = tmp_path / "doc.json"
    trials.write_json({"study": "m", "windows": [{"index": 0, "best_params": None}], "n": math.pi}, out, {0: study})
    doc = json.loads(out.read_text())
    assert len(doc["windows"][0]["trials"]) == 60 and doc["windows"][0]["best_params"] is None
