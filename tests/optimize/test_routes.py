"""GET /api/backtest/optimize/studies[/{name}]: the dashboard's view of recorded studies, with live progress."""

from __future__ import annotations

from pathlib import Path

import optuna
from fastapi.testclient import TestClient

from roottrading.config import load_settings
from roottrading.optimize import results
from roottrading.optimize.study import make_storage, platform_storage_url
from roottrading.runtime import Host
from roottrading.runtime.http import build_app
from tests.optimize.test_tune import store_result


def test_no_study_yet_is_an_empty_list_and_creates_no_storage(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'rt.db'}"
    settings = load_settings(database_url=url, api_token="t", data_dir=tmp_path)
    with TestClient(build_app(Host(settings, ["backtest"]))) as client:
        assert client.get("/api/backtest/optimize/studies").json() == []
        assert client.get("/api/backtest/optimize/studies/nope").status_code == 404
    assert not (tmp_path / "rt.optuna.db").exists()


def test_a_running_study_shows_its_progress_and_a_finished_one_its_result(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'rt.db'}"
    store_result(url, "done", "ema_cross", ["BTCUSDT"], 1.1, 30)
    storage = make_storage(platform_storage_url(url))
    running = results.record_study(storage, "live")  # no walk-forward: the trials are in the record's own study
    plan = {"study": "live", "strategy": "rsi_cross", "symbols": ["ETHUSDT"], "interval": "1m", "objective": "sharpe"}
    windows = [{"index": 0, "train_start": 0, "train_end": 10, "test_start": 10, "test_end": 10}]
    results.write_plan(running, {**plan, "n_trials": 50, "walk_forward": False, "windows": windows})
    for v in (0.5, 1.5, None):
        t = running.ask()
        t.suggest_int("x", 1, 3)
        running.tell(t, v) if v is not None else running.tell(t, state=optuna.trial.TrialState.PRUNED)
    running.ask()  # one in progress

    settings = load_settings(database_url=url, api_token="t", data_dir=tmp_path)
    with TestClient(build_app(Host(settings, ["backtest"]))) as client:
        rows = client.get("/api/backtest/optimize/studies").json()
        assert [r["study"] for r in rows] == ["live", "done"]  # newest first
        live = rows[0]
        assert (live["status"], live["trials_done"], live["trials_total"], live["best_value"]) == (
            "running",
            3,
            50,
            1.5,
        )
        detail = client.get("/api/backtest/optimize/studies/live").json()
        assert detail["windows"][0]["running"] == 1 and detail["result"] is None
        done = client.get("/api/backtest/optimize/studies/done").json()
        assert done["status"] == "finished" and done["result"]["chosen_params"] == {"fast": 5}
        assert done["result"]["out_of_sample"]["sharpe"] == 1.1 and rows[1]["chosen_params"] == {"fast": 5}
