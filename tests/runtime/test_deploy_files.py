"""deploy/: what can be checked without a Docker engine. `docker-compose config` (Debian's docker-compose)
validates and expands the compose file; the expanded model is then held to the deployment's rules (one image,
health checks, restarts, secrets as files, no database or Redis port on the host). The Dockerfile is checked
for its shape; its Python steps are deploy/install.sh, which runs outside Docker too (docs/deployment.md)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from roottrading.runtime.registry import DEFAULT_ORDER
from roottrading.runtime.supervisor import SPLIT_PORTS

from ..conftest import IN_CI

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    tool = shutil.which("docker-compose")
    if tool is None:
        msg = "docker-compose not installed (apt-get install docker-compose)"
        if IN_CI:
            pytest.fail(msg + " (CI=true: the compose file must be validated)")
        pytest.skip(msg)
    env = {
        k: v for k, v in os.environ.items() if k not in ("TRADING_MODE", "SYMBOLS", "ROOTTRADING_TAG", "POSTGRES_IMAGE")
    }
    out = subprocess.run(
        [tool, "-f", str(DEPLOY / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    model: dict[str, Any] = yaml.safe_load(out.stdout)
    return model


def _app_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if n not in ("redis", "postgres", "migrate")}


def test_every_service_has_its_own_container_from_one_image(compose: dict[str, Any]) -> None:
    apps = _app_services(compose)
    assert set(apps) == set(DEFAULT_ORDER)
    images = {s["image"] for s in apps.values()} | {compose["services"]["migrate"]["image"]}
    assert images == {"roottrading:latest"}
    for name, svc in apps.items():
        assert svc["command"] == ["service", name]
        assert svc["expose"] == [str(SPLIT_PORTS[name])]
        assert svc["restart"] == "unless-stopped"
        assert svc["healthcheck"]["test"] == ["CMD", "roottrading", "status", "--service", name, "--allow-degraded"]
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert "ALL" in svc["cap_drop"]


def test_no_database_or_redis_port_on_the_host(compose: dict[str, Any]) -> None:
    for infra in ("redis", "postgres"):
        assert "ports" not in compose["services"][infra], infra
        assert compose["services"][infra]["healthcheck"]["test"]
        assert compose["services"][infra]["restart"] == "unless-stopped"
    assert compose["services"]["postgres"]["image"].startswith("timescale/timescaledb:")
    for name, svc in _app_services(compose).items():
        for port in svc.get("ports", []):  # the APIs: on the host's loopback only (v1 prints strings, v2 maps)
            host_ip = port.get("host_ip") if isinstance(port, dict) else port.split(":")[0]
            assert host_ip == "127.0.0.1", (name, port)


def test_secrets_come_from_files_never_from_the_environment(compose: dict[str, Any]) -> None:
    assert {s["file"].rsplit("/", 1)[-1] for s in compose["secrets"].values()} >= {
        "api_token",
        "database_url",
        "bus_url",
        "postgres_password",
    }
    assert compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    for name, svc in {**_app_services(compose), "migrate": compose["services"]["migrate"]}.items():
        env = svc["environment"]
        for var in ("API_TOKEN", "DATABASE_URL", "BUS_URL", "BINANCE_API_KEY", "BINANCE_SECRET_KEY"):
            assert var not in env, (name, var)
            secret = env[f"{var}_FILE"].removeprefix("/run/secrets/")
            assert secret in {s if isinstance(s, str) else s["source"] for s in svc["secrets"]}, (name, var)
        assert not any(re.search(r"://[^/@]*:[^/@]+@", str(v)) for v in env.values()), name  # no password in a URL


def test_dockerfile_is_multi_stage_non_root_with_a_health_check() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", text, re.M)
    assert [s[1] for s in stages] == ["web", "build", "runtime"]
    assert stages[0][0].startswith("node:")
    runtime = text.split("AS runtime", 1)[1]
    assert re.search(r"^USER roottrading", runtime, re.M) and "useradd --system --uid 10001" in runtime
    assert re.search(r"^HEALTHCHECK .*\n\s+CMD \[\"roottrading\", \"status\"", runtime, re.M)
    assert "COPY --from=build /opt/venv /opt/venv" in runtime and "npm" not in runtime and "pip" not in runtime
    assert "RUN sh deploy/install.sh /opt/venv /src" in text
    install = (DEPLOY / "install.sh").read_text()
    assert "--only-binary=TA-Lib" in install and '-c "$SRC/requirements.lock"' in install
