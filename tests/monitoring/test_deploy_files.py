"""The Prometheus config, alert rules and Grafana dashboard under deploy/ are valid and name only metrics that
/metrics really exports (on a demo run that has traded)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import IN_CI
from tests.monitoring.conftest import samples

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROM = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "roottrading.json"
NAME = re.compile(r"\b((?:roottrading|process|python)_[a-zA-Z0-9_]+)")


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        msg = "promtool not installed (Debian: apt-get install prometheus)"
        if IN_CI:
            pytest.fail(msg + " (CI=true: the deploy files must be validated)")
        pytest.skip(msg)
    return path


def _expressions() -> dict[str, list[str]]:
    dash = json.loads(DASHBOARD.read_text())
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    rules = yaml.safe_load((PROM / "alerts.yml").read_text())
    return {
        "dashboard": [t["expr"] for p in panels for t in p["targets"]],
        "alerts": [r["expr"] for g in rules["groups"] for r in g["rules"]],
    }


@pytest.mark.parametrize("what", ["config", "rules"])
def test_promtool_accepts_the_files(what: str) -> None:
    target = PROM / ("prometheus.yml" if what == "config" else "alerts.yml")
    out = subprocess.run([_promtool(), "check", what, str(target)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_dashboard_has_the_four_sections_and_is_provisioned() -> None:
    dash = json.loads(DASHBOARD.read_text())
    rows = [p["title"] for p in dash["panels"] if p["type"] == "row"]
    assert rows == ["Overview", "Trading", "Latency", "Infrastructure"]
    assert all(t["expr"].strip() for p in dash["panels"] if p["type"] != "row" for t in p["targets"])
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/roottrading.yml").read_text())
    assert provider["providers"][0]["type"] == "file"
    alerts = {r["alert"] for g in yaml.safe_load((PROM / "alerts.yml").read_text())["groups"] for r in g["rules"]}
    assert {
        "RootTradingServiceDown",
        "RootTradingGatewayDisconnected",
        "RootTradingDeadLettersGrowing",
        "RootTradingKillSwitchOn",
        "RootTradingDrawdownNearLimit",
        "RootTradingOrderLatencyHigh",
        "RootTradingBusBacklogHigh",
        "RootTradingExchangeWeightNearLimit",
        "RootTradingExchangeRateLimited",
    } <= alerts


def test_every_metric_in_the_dashboard_and_the_rules_is_exported(demo_metrics: str) -> None:
    exported = set(samples(demo_metrics))
    # families whose sample names only appear once something happened (a dead letter) are declared by # TYPE
    declared = {line.split()[2] for line in demo_metrics.splitlines() if line.startswith("# TYPE")}
    known = exported | {f"{d}_total" for d in declared} | declared
    for where, exprs in _expressions().items():
        used = {n for e in exprs for n in NAME.findall(e)}
        assert used, where
        unknown = sorted(used - known)
        assert not unknown, (where, unknown)
