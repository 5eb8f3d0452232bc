"""Security beyond loopback (issue 18, item 4): every route and the live WebSocket need the token, the server
refuses to start without one, CORS is closed unless allow-listed, secrets come from files, and a service calling
another (coordinator -> risk) authenticates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from typer.testing import CliRunner

from roottrading.cli import app as cli
from roottrading.clock import SimClock
from roottrading.config import ConfigError, load_settings
from roottrading.domain import Side
from roottrading.risk import OrderIntent
from roottrading.runtime import Host
from roottrading.runtime.http import build_app, exposure_problem, is_loopback
from roottrading.services.coordinator import risk_client as rc

TOKEN = "exposed-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize(
    ("bind", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("trading.example.com", False),
    ],
)
def test_loopback_addresses(bind: str, loopback: bool) -> None:
    assert is_loopback(bind) is loopback


def test_exposed_server_needs_an_operator_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert exposure_problem(load_settings(http_host="127.0.0.1")) is None
    problem = exposure_problem(load_settings(http_host="0.0.0.0"))
    assert problem is not None and "API_TOKEN" in problem and "0.0.0.0" in problem
    assert exposure_problem(load_settings(http_host="0.0.0.0", api_token="t")) is None


@pytest.mark.parametrize("argv", [["up"], ["service", "trader"], ["demo"], ["up", "--split"]])
def test_cli_refuses_to_serve_beyond_loopback_without_a_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: list[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HTTP_HOST", "0.0.0.0")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("API_TOKEN", raising=False)
    monkeypatch.setenv("BUS_URL", "redis://127.0.0.1:6379/0")  # so that --split gets as far as the token check
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u@127.0.0.1:1/none")
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2, result.output
    assert "exposes the API beyond this machine: set API_TOKEN" in result.output
    assert not (tmp_path / "api_token").exists()  # refused before any token was generated


def _host(tmp_path: Path, *, per_service: bool = False, **settings: Any) -> Host:
    s = load_settings(
        symbols="BTCUSDT",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db",
        data_dir=tmp_path,
        api_token=TOKEN,
        **settings,
    )
    return Host(s, ["stream", "pnl"], clock=SimClock(), per_service_http=per_service)


@pytest.fixture
def exposed(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(build_app(_host(tmp_path, http_host="0.0.0.0"))) as c:
        yield c


def test_exposed_reads_need_the_token(exposed: TestClient) -> None:
    for path in ("/api/health", "/api/pnl/health", "/api/pnl/summary", "/api"):
        r = exposed.get(path)
        assert r.status_code == 401, (path, r.status_code)
        assert r.headers["www-authenticate"] == "Bearer"
    assert exposed.get("/api/health", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert exposed.get("/api/health", headers=AUTH).status_code == 200
    assert exposed.get("/api/pnl/health", headers=AUTH).status_code == 200
    assert exposed.post("/api/pnl/anything").status_code == 401


def test_exposed_dashboard_files_stay_public(exposed: TestClient) -> None:
    """The page load cannot carry a header; it holds no data (the data is under /api)."""
    assert exposed.get("/").status_code == 200
    assert exposed.get("/openapi.json").status_code == 200


def test_exposed_websocket_needs_the_token(exposed: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect) as refused, exposed.websocket_connect("/api/stream/ws") as ws:
        ws.receive_json()
    assert refused.value.code == 1008
    with pytest.raises(WebSocketDisconnect), exposed.websocket_connect("/api/stream/ws?token=wrong") as ws:
        ws.receive_json()
    with exposed.websocket_connect(f"/api/stream/ws?token={TOKEN}") as ws:
        assert ws.receive_json()["topic"] == "hello"
    with exposed.websocket_connect("/api/stream/ws", headers=AUTH) as ws:
        assert ws.receive_json()["topic"] == "hello"


def test_loopback_keeps_reads_open(tmp_path: Path) -> None:
    with TestClient(build_app(_host(tmp_path))) as c:
        assert c.get("/api/health").status_code == 200
        with c.websocket_connect("/api/stream/ws") as ws:
            assert ws.receive_json()["topic"] == "hello"
        assert c.post("/api/pnl/anything").status_code == 401  # writes need the token everywhere


def test_exposed_per_service_routes_need_the_token(tmp_path: Path) -> None:
    host = _host(tmp_path, http_host="0.0.0.0", per_service=True)
    with TestClient(build_app(host, per_service=True)) as c:
        assert c.get("/health").status_code == 401
        assert c.get("/summary").status_code == 401
        assert c.get("/openapi.json").status_code == 401  # no dashboard exemption without a dashboard
        assert c.get("/health", headers=AUTH).status_code == 200


def test_cors_is_closed_by_default(exposed: TestClient) -> None:
    pre = {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    r = exposed.options("/api/health", headers=pre)
    assert "access-control-allow-origin" not in r.headers
    r = exposed.get("/api/health", headers={**AUTH, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_cors_allow_list(tmp_path: Path) -> None:
    host = _host(tmp_path, http_host="0.0.0.0", cors_allow_origins="https://dash.example, https://ops.example/")
    assert host.settings.cors_allow_origins == ["https://dash.example", "https://ops.example"]
    with TestClient(build_app(host)) as c:
        pre = {
            "Origin": "https://dash.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        }
        r = c.options("/api/health", headers=pre)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://dash.example"
        r = c.get("/api/health", headers={**AUTH, "Origin": "https://dash.example"})
        assert r.headers["access-control-allow-origin"] == "https://dash.example"
        r = c.options("/api/health", headers={**pre, "Origin": "https://evil.example"})
        assert r.headers.get("access-control-allow-origin") != "https://evil.example"
        assert c.get("/api/health", headers={"Origin": "https://dash.example"}).status_code == 401  # CORS != auth


def test_cors_origin_must_be_a_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", "dash.example")
    with pytest.raises(ConfigError, match="CORS_ALLOW_ORIGINS"):
        load_settings()


def test_secrets_from_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    files = {
        "API_TOKEN": "tok-from-file",
        "BINANCE_API_KEY": "key-from-file",
        "BINANCE_SECRET_KEY": "secret-from-file",
        "DATABASE_URL": "postgresql+asyncpg://rt:pg-pass@db:5432/roottrading",
        "BUS_URL": "redis://:redis-pass@redis:6379/0",
    }
    for name, value in files.items():
        (tmp_path / name.lower()).write_text(value + "\n")  # as `echo ... > file` writes it
        monkeypatch.setenv(f"{name}_FILE", str(tmp_path / name.lower()))
    s = load_settings()
    assert s.api_token.get_secret_value() == "tok-from-file"
    assert s.binance_api_key.get_secret_value() == "key-from-file"
    assert s.binance_secret_key.get_secret_value() == "secret-from-file"
    assert s.database_url == files["DATABASE_URL"] and s.bus_url == files["BUS_URL"]
    shown = json.dumps(s.masked())
    for secret in ("tok-from-file", "key-from-file", "secret-from-file", "pg-pass", "redis-pass"):
        assert secret not in shown
    assert s.masked()["database_url"] == "postgresql+asyncpg://rt:****@db:5432/roottrading"


def test_secret_file_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("API_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="API_TOKEN_FILE: cannot read"):
        load_settings()
    (tmp_path / "tok").write_text("x")
    monkeypatch.setenv("API_TOKEN_FILE", str(tmp_path / "tok"))
    monkeypatch.setenv("API_TOKEN", "y")
    with pytest.raises(ConfigError, match="either API_TOKEN or API_TOKEN_FILE"):
        load_settings()


def test_secret_files_named_in_dotenv_and_levels(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`.env` may name the files too; the environment still wins, and a `.env` copied from .env.example (which
    spells out DATABASE_URL) does not clash with DATABASE_URL_FILE given in the environment."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tok").write_text("from-dotenv-file\n")
    (tmp_path / "db").write_text("postgresql+asyncpg://u:p@db/x\n")
    (tmp_path / ".env").write_text(f"API_TOKEN_FILE={tmp_path / 'tok'}\nDATABASE_URL=sqlite+aiosqlite:///./a.db\n")
    assert load_settings().api_token.get_secret_value() == "from-dotenv-file"
    monkeypatch.setenv("DATABASE_URL_FILE", str(tmp_path / "db"))
    assert load_settings().database_url == "postgresql+asyncpg://u:p@db/x"
    monkeypatch.setenv("API_TOKEN", "from-env")
    assert load_settings().api_token.get_secret_value() == "from-env"


def test_config_show_never_prints_a_url_password(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REDIS_URL", "redis://default:hunter2@cache:6379/0")
    result = CliRunner().invoke(cli, ["config", "show"])
    assert result.exit_code == 0 and "hunter2" not in result.output
    assert json.loads(result.output)["redis_url"] == "redis://default:****@cache:6379/0"


async def test_coordinator_authenticates_to_an_exposed_risk_service(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Per-service mode: the coordinator's HTTP risk check carries the platform's token (API_TOKEN_FILE here,
    as in the containers), and an exposed risk service refuses the same call without it."""
    (tmp_path / "token").write_text(TOKEN + "\n")
    monkeypatch.setenv("API_TOKEN_FILE", str(tmp_path / "token"))
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        symbols="BTCUSDT", database_url=f"sqlite+aiosqlite:///{tmp_path}/r.db", data_dir=tmp_path, http_host="0.0.0.0"
    )
    host = Host(settings, ["risk"], clock=SimClock(), per_service_http=True)
    risk_app = build_app(host, per_service=True)
    real_client = httpx.AsyncClient

    def through_the_app(**kw: Any) -> httpx.AsyncClient:  # the client the code builds, routed to the app
        return real_client(transport=httpx.ASGITransport(app=risk_app), **kw)

    monkeypatch.setattr(rc.httpx, "AsyncClient", through_the_app)
    await host.start()
    client = rc.RiskClient(SimpleNamespace(settings=settings, peer=lambda _name: None), url="http://risk:5007")
    intent = OrderIntent(
        id="i1", symbol="BTCUSDT", side=Side.BUY, quantity=Decimal("0.001"), price=Decimal(100), time=1
    )
    try:
        decision = await client.check(intent)
        assert decision.action in ("allow", "shrink", "reject")  # an answer, not a 401
        async with real_client(transport=httpx.ASGITransport(app=risk_app), base_url="http://risk:5007") as anon:
            assert (await anon.post("/check", json={})).status_code == 401
            assert (await anon.get("/health")).status_code == 401
    finally:
        await client.close()
        await host.stop()
