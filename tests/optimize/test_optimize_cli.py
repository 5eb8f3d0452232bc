"""The command end to end on generated candles: walk-forward, JSON, constraints, resume after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from roottrading.cli import app
from roottrading.optimize.study import make_storage, platform_storage_url
from tests.optimize.conftest import base_args


def _run(args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(app, args)
    return res.exit_code, res.output


def test_walk_forward_chooses_on_training_and_scores_on_the_next_window(
    tmp_path: Path, data_dir: Path, env: str
) -> None:
    out = tmp_path / "opt.json"
    code, text = _run(
        base_args(
            data_dir,
            12,
            "--walk-forward",
            "train=12d,test=6d,step=10d",
            "--jobs",
            "1",
            "--seed",
            "3",
            "--fallback",
            "skip",
            "--no-verify",
            "--json",
            str(out),
            "--report",
            str(tmp_path / "opt.html"),
        )
    )
    assert code == 0, text
    doc = json.loads(out.read_text())
    assert doc["walk_forward"] and len(doc["windows"]) == 3 and doc["trials_run_now"] == 36
    for w in doc["windows"]:
        assert len(w["trials"]) == 12 and w["train_end"] == w["test_start"]
        complete = [t for t in w["trials"] if t["state"] == "COMPLETE"]
        best = max(complete, key=lambda t: t["value"])
        assert w["best_params"] == best["params"] and w["best_value"] == best["value"]
        assert set(w["out_of_sample"]) >= {"net_pnl", "sharpe", "trades"}
        assert w["deflated_sharpe"] is None or 0 <= w["deflated_sharpe"] <= 1
        for t in w["trials"]:  # every pruned trial says why
            assert t["state"] != "PRUNED" or t["reason"]
    oos = doc["out_of_sample"]
    times = [t for t, _ in oos["equity"]]
    assert times == sorted(times)
    assert doc["windows"][0]["test_start"] <= times[0] and times[-1] < doc["windows"][-1]["test_end"]
    # the stitched out-of-sample PnL is the sum of the test windows' PnL
    total = sum(float(w["out_of_sample"]["net_pnl"]) for w in doc["windows"])
    assert float(oos["metrics"]["net_pnl"]) == pytest.approx(total, abs=1e-6)
    assert "out-of-sample (stitched test windows)" in text
    page = (tmp_path / "opt.html").read_text()
    assert "Out-of-sample result" in page and "<polyline" in page and "optimisation history" in page
    assert page.count("<h3>Window") == 3 and "<script" not in page
    assert any(w.get("importance") for w in doc["windows"])


@pytest.mark.slow
def test_chosen_candidates_are_rerun_on_replay_and_constraints_prune(tmp_path: Path, data_dir: Path, env: str) -> None:
    out = tmp_path / "opt.json"
    code, text = _run(
        [
            *base_args(
                data_dir,
                6,
                "--jobs",
                "1",
                "--seed",
                "1",
                "--fallback",
                "skip",
                "--json",
                str(out),
                "--min-trades",
                "2",
                "--max-drawdown",
                "50",
                end="2024-01-15",
            )
        ]
    )
    assert code == 0, text
    doc = json.loads(out.read_text())
    (w,) = doc["windows"]
    assert w["parity"]["match"], w["parity"]
    assert w["parity"]["replay_trades"] == w["in_sample"]["trades"]
    for t in w["trials"]:
        if t["state"] == "COMPLETE":
            assert t["metrics"]["closed_trades"] >= 2
        elif "closed trades" in (t.get("reason") or ""):
            assert t["metrics"]["closed_trades"] < 2
    assert "in-sample" in doc["note"]


def test_an_existing_study_needs_resume(tmp_path: Path, data_dir: Path, env: str) -> None:
    args = base_args(data_dir, 2, "--jobs", "1", "--fallback", "skip", "--no-verify", "--study-name", "s1")
    assert _run(args)[0] == 0
    code, text = _run(args)
    assert code == 2 and "--resume" in text
    code, text = _run([*args, "--resume"])
    assert code == 0 and "0 trial(s) run now" in text


def _finished(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=make_storage(url))
    return study.get_trials(deepcopy=False)


@pytest.mark.slow
def test_sigkill_mid_study_then_resume_loses_and_repeats_no_trial(tmp_path: Path, data_dir: Path, env: str) -> None:
    n = 24
    url = platform_storage_url(env)
    args = base_args(
        data_dir, n, "--jobs", "2", "--fallback", "skip", "--no-verify", "--study-name", "kill", "--sampler", "random"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "roottrading", *args],
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            try:
                trials = _finished(url, "kill")
            except KeyError:  # the study is not created yet
                trials = []
            done = [t for t in trials if t.state.is_finished()]
            if len(done) >= 6 and any(t.state.name == "RUNNING" for t in trials):
                break
            assert proc.poll() is None, "the study ended before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("the study never reached 6 finished trials")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the command and its worker processes, mid-trial
        proc.wait()
    before = {t.number: t for t in _finished(url, "kill") if t.state.is_finished()}
    running = {t.number: t.params for t in _finished(url, "kill") if t.state.name == "RUNNING"}
    # almost always a trial is mid-run at the kill (two workers); if one had just finished, the resume must still
    # add exactly the missing trials (test_study.py covers the re-queue deterministically)
    assert len(before) < n

    code, text = _run([*args, "--resume", "--jobs", "1"])
    assert code == 0, text
    after = _finished(url, "kill")
    counted = [t for t in after if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(counted) == n  # none lost, no extra
    for num, t in before.items():  # finished before the kill: untouched, not re-run
        again = next(a for a in after if a.number == num)
        assert (again.state, again.params, again.value) == (t.state, t.params, t.value)
    interrupted = [t for t in after if t.user_attrs.get("interrupted")]
    assert sorted(t.number for t in interrupted) == sorted(running)
    retried = {t.user_attrs["retry_of"]: t.params for t in counted if "retry_of" in t.user_attrs}
    assert sorted(retried) == sorted(running)  # each interrupted trial ran again, exactly once
    for num, params in running.items():  # with the parameters it had sampled (a kill mid-sampling: the rest anew)
        assert retried[num].items() >= params.items()
    assert f"{n - len(before)} trial(s) run now" in text


@pytest.mark.parametrize(
    ("extra", "msg"),
    [
        (["--objective", "luck"], "--objective 'luck'"),
        (["--space", "bogus=1:2"], "not a parameter"),
        (["--walk-forward", "train=30d,test=30d"], "shorter than one"),
        (["--sampler", "annealing"], "--sampler"),
        (["--balance", "-5"], "must be finite numbers > 0"),  # was accepted before (a study on no money)
        (["--balance", "abc"], "not a number"),
    ],
)
def test_bad_options_exit_2_with_one_message(data_dir: Path, env: str, extra: list[str], msg: str) -> None:
    code, text = _run(base_args(data_dir, 2, *extra))
    assert code == 2 and msg in text
