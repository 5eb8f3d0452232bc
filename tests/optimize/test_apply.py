"""`optimize --apply` changes the running platform's parameters through its API, after a diff and a confirmation,
and the platform keeps them across a restart (issue 14, item 4)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from roottrading.cli import app
from roottrading.config import load_settings
from roottrading.optimize import apply
from roottrading.runtime import Host
from roottrading.runtime.http import build_app
from tests.optimize.conftest import base_args

AUTH = {"Authorization": "Bearer t"}


def platform_app(tmp_path: Path, url: str) -> Any:
    settings = load_settings(
        symbols="BTCUSDT", database_url=url, api_token="t", data_dir=tmp_path / "platform", strategies="ema_cross"
    )
    return build_app(Host(settings, ["analyzer"]))


def use_client(monkeypatch: pytest.MonkeyPatch, client: TestClient) -> None:
    """`--apply` talks to this in-process platform instead of HTTP_HOST:HTTP_PORT."""
    monkeypatch.setattr(apply.Platform, "connect", classmethod(lambda cls, url, token, timeout=10: cls(client)))


def ema(client: TestClient) -> dict[str, Any]:
    rows = client.get("/api/analyzer/strategies", params={"symbol": "BTCUSDT"}).json()
    return apply.current_params(next(s for s in rows if s["name"] == "ema_cross"))


def test_apply_shows_the_diff_asks_then_writes_and_the_platform_keeps_it(
    tmp_path: Path, data_dir: Path, env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "opt.json"
    args = base_args(data_dir, 6, "--jobs", "1", "--seed", "5", "--fallback", "skip", "--no-verify")
    args += ["--study-name", "apply-test", "--json", str(out), "--apply"]
    with TestClient(build_app_for(tmp_path, env), headers=AUTH) as client:
        use_client(monkeypatch, client)
        before = ema(client)
        res = CliRunner().invoke(app, args, input="n\n")
        assert res.exit_code == 0, res.output
        chosen = json.loads(out.read_text())["chosen_params"]
        changed = {k: v for k, v in chosen.items() if before.get(k) != v}
        assert changed, "the study chose the defaults: nothing to show"
        for k, v in changed.items():
            assert f"ema_cross BTCUSDT {k}: {before[k]!r} -> {v!r}" in res.output
        assert "not applied" in res.output and ema(client) == before

        res = CliRunner().invoke(app, [*args, "--resume", "--yes"])
        assert res.exit_code == 0, res.output
        assert json.loads(out.read_text())["chosen_params"] == chosen  # the finished study, not re-searched
        assert "applied" in res.output
        assert {k: ema(client)[k] for k in chosen} == chosen

    with TestClient(build_app_for(tmp_path, env), headers=AUTH) as client:  # a restart of the platform
        assert {k: ema(client)[k] for k in chosen} == chosen
        use_client(monkeypatch, client)
        res = CliRunner().invoke(app, [*args, "--resume", "--yes"])
        assert res.exit_code == 0 and "no change" in res.output


def test_apply_refused_by_the_platform_exits_2_with_the_reason(
    tmp_path: Path, data_dir: Path, env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = base_args(data_dir, 3, "--jobs", "1", "--seed", "5", "--fallback", "skip", "--no-verify", "--apply")
    with TestClient(build_app_for(tmp_path, env)) as client:  # no token: the platform refuses the write
        use_client(monkeypatch, client)
        res = CliRunner().invoke(app, [*args, "--yes"])
    assert res.exit_code == 2 and "401" in res.output


def build_app_for(tmp_path: Path, url: str) -> Any:
    return platform_app(tmp_path, url)
