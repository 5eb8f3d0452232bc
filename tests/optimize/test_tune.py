"""`roottrading tune`: ranks per symbol from stored walk-forward results and paper/live PnL, enables the pairs
that pass, disables the others, through the running platform's API (issue 14, item 4)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from roottrading.capital.pnl import CyclePnl
from roottrading.cli import app
from roottrading.config import load_settings
from roottrading.optimize import apply, results
from roottrading.optimize.study import make_storage, platform_storage_url
from roottrading.optimize.tune import Live, Thresholds, decide, live_evidence, walk_forward_evidence
from roottrading.runtime import Host
from roottrading.runtime.http import build_app

AUTH = {"Authorization": "Bearer t"}


def store_result(url: str, name: str, strategy: str, symbols: list[str], sharpe: float, trades: int) -> None:
    """A finished walk-forward study's record, written by the same functions `optimize` uses."""
    study = results.record_study(make_storage(platform_storage_url(url)), name)
    plan = {"study": name, "strategy": strategy, "symbols": symbols, "interval": "1h", "objective": "sharpe"}
    results.write_plan(study, {**plan, "n_trials": 10, "walk_forward": True, "windows": []})
    doc = {
        **plan,
        "walk_forward": True,
        "windows": [{"index": 0, "best_params": {"fast": 5}}],
        "out_of_sample": {"metrics": {"sharpe": sharpe, "trades": trades, "max_drawdown": -0.05}},
        "deflated_sharpe_mean": 0.8,
    }
    results.write_result(study, doc)


def enabled(client: TestClient, symbol: str) -> dict[str, bool]:
    return {s["name"]: s["enabled"] for s in client.get("/api/analyzer/strategies", params={"symbol": symbol}).json()}


def test_tune_dry_run_shows_the_plan_then_applies_it_through_the_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'rt.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SYMBOLS", "BTCUSDT,ETHUSDT")
    settings = load_settings(api_token="t", strategies="ema_cross,rsi_cross")
    with TestClient(build_app(Host(settings, ["analyzer"])), headers=AUTH) as client:
        monkeypatch.setattr(apply.Platform, "connect", classmethod(lambda cls, u, tok, timeout=10: cls(client)))
        store_result(url, "old", "rsi_cross", ["BTCUSDT"], 2.0, 50)  # superseded by the newer study below
        store_result(url, "ema", "ema_cross", ["BTCUSDT", "ETHUSDT"], 1.3, 40)
        store_result(url, "rsi", "rsi_cross", ["BTCUSDT"], 0.2, 40)
        store_result(url, "bb", "bollinger_touch", ["ETHUSDT"], 0.9, 25)
        before = enabled(client, "BTCUSDT"), enabled(client, "ETHUSDT")
        assert before[0]["rsi_cross"] and not before[1]["bollinger_touch"]

        res = CliRunner().invoke(app, ["tune", "--dry-run", "--unscored", "keep"])
        assert res.exit_code == 0, res.output
        assert "DISABLE" in res.output and "out-of-sample Sharpe 0.2 < 0.5" in res.output
        assert (enabled(client, "BTCUSDT"), enabled(client, "ETHUSDT")) == before  # a dry run changes nothing

        res = CliRunner().invoke(app, ["tune", "--yes", "--unscored", "keep", "--top", "1"])
        assert res.exit_code == 0, res.output
        btc, eth = enabled(client, "BTCUSDT"), enabled(client, "ETHUSDT")
        assert btc["ema_cross"] and not btc["rsi_cross"]
        assert eth["ema_cross"] and not eth["bollinger_touch"]  # passes, but ranked 2nd behind ema_cross (--top 1)
        assert btc["macd_crossover"] == before[0]["macd_crossover"]  # no evidence, --unscored keep

        res = CliRunner().invoke(app, ["tune", "--yes"])  # default: strategies without evidence are disabled
        assert res.exit_code == 0, res.output
        eth = enabled(client, "ETHUSDT")
        assert eth["bollinger_touch"] and eth["ema_cross"] and not eth["macd_crossover"]


def _pnl(strategy: str, symbol: str, realised: str, closed: bool = True) -> CyclePnl:
    z = Decimal(0)
    return CyclePnl(
        "c", symbol, strategy, "COMPLETED", 0, 1 if closed else None, Decimal(realised), z, z, z, z, "fills"
    )


def test_live_pnl_vetoes_a_walk_forward_pass_and_stands_alone_when_there_is_none() -> None:
    live = live_evidence([_pnl("a", "X", "-5")] * 3 + [_pnl("b", "X", "2")] * 3 + [_pnl("b", "X", "9", closed=False)])
    assert live[("a", "X")].closed == 3 and live[("b", "X")].realised == Decimal(6)
    wf: dict[tuple[str, str], Any] = {
        ("a", "X"): {"study": "s", "out_of_sample": {"sharpe": 2.0, "trades": 50}},
    }
    t = Thresholds(min_live_trades=3)
    ds = {d.strategy: d for d in decide({("a", "X"): True, ("b", "X"): False, ("c", "X"): True}, wf, live, t)}
    assert not ds["a"].enable and "paper/live realised PnL -15" in ds["a"].reasons[0]
    assert ds["b"].enable and ds["b"].change and ds["b"].rank == 1
    assert not ds["c"].enable and ds["c"].reasons == ["no walk-forward result and too few paper/live trades"]
    few = decide({("a", "X"): True}, wf, {("a", "X"): Live(2, Decimal(-1))}, t)
    assert few[0].enable  # two losing cycles are not yet evidence


def test_only_finished_walk_forward_results_are_evidence_newest_first() -> None:
    res = {"strategy": "a", "symbols": ["X"], "walk_forward": True, "out_of_sample": {"sharpe": 1}}
    studies = [
        {"study": "running", "status": "running", "result": None},
        {"study": "new", "status": "finished", "result": res},
        {"study": "in-sample", "status": "finished", "result": {**res, "walk_forward": False}},
        {"study": "old", "status": "finished", "result": res},
    ]
    assert walk_forward_evidence(studies)[("a", "X")]["study"] == "new"
