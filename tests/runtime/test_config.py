from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from roottrading.config import ConfigError, load_settings


def test_defaults_are_embedded_and_safe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.trading_mode == "demo" and s.bus_url == "memory://" and s.database_url.startswith("sqlite+aiosqlite")
    assert s.http_host == "127.0.0.1"
    assert s.pocket_config == {"active": Decimal(60), "buffer": Decimal(30), "safety": Decimal(10)}


@pytest.mark.parametrize(
    ("env", "value", "needle"),
    [
        ("INTERVAL", "7m", "INTERVAL"),
        ("TRADING_MODE", "yolo", "TRADING_MODE"),
        ("POCKET_CONFIG", "active:70,buffer:40", "sum to 100"),
        ("POCKET_CONFIG", "active:110,buffer:-10", "negative"),
        ("SYMBOLS", "BTC-USDT", "SYMBOLS"),
        ("HTTP_PORT", "70000", "HTTP_PORT"),
        ("BUS_URL", "kafka://x", "BUS_URL"),
    ],
)
def test_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: str, value: str, needle: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert needle in str(exc.value)
    assert "\n" not in str(exc.value)  # one clear line


def test_live_mode_requires_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRADING_MODE", "live")
    with pytest.raises(ConfigError, match="BINANCE_API_KEY"):
        load_settings()


def test_sources_env_over_dotenv_over_yaml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "roottrading.yaml").write_text("symbols: [SOLUSDT]\ninterval: 5m\nquote_asset: USDC\n")
    (tmp_path / ".env").write_text("INTERVAL=15m\nQUOTE_ASSET=FDUSD\n")
    monkeypatch.setenv("QUOTE_ASSET", "EUR")
    s = load_settings()
    assert s.symbols == ["SOLUSDT"] and s.interval == "15m" and s.quote_asset == "EUR"


def test_secrets_are_masked_everywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BINANCE_API_KEY", "key-abc-123")
    monkeypatch.setenv("BINANCE_SECRET_KEY", "sec-xyz-789")
    s = load_settings()
    assert "sec-xyz-789" not in repr(s) and "sec-xyz-789" not in str(s.model_dump())
    masked = s.masked()
    assert masked["binance_secret_key"] == "**********" and masked["binance_api_key"] == "**********"
    out = subprocess.run(
        [sys.executable, "-m", "roottrading", "config", "show"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"BINANCE_SECRET_KEY": "sec-xyz-789", "PATH": "/usr/bin"},
        check=True,
    )
    assert "sec-xyz-789" not in out.stdout
    assert json.loads(out.stdout)["binance_secret_key"] == "**********"


def test_cli_refuses_bad_config_with_exit_code_2(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "roottrading", "config", "show"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"INTERVAL": "9m", "PATH": "/usr/bin"},
    )
    assert out.returncode == 2
    assert "INTERVAL" in out.stderr and "Traceback" not in out.stderr


def test_api_token_generated_once_and_kept(tmp_path: Path) -> None:
    s = load_settings(data_dir=tmp_path)
    token, created = s.ensure_api_token()
    assert created and len(token) >= 32
    assert (tmp_path / "api_token").stat().st_mode & 0o777 == 0o600
    again, created2 = load_settings(data_dir=tmp_path).ensure_api_token()
    assert again == token and not created2


def test_binance_urls_are_bases_without_path() -> None:
    """The gateway adds /stream?streams=... and the user stream /ws/<listenKey>: a pasted /ws must not double."""
    s = load_settings(binance_ws_url="ws://127.0.0.1:9000/ws/", binance_rest_url="http://127.0.0.1:9000/")
    assert (s.binance_ws_url, s.binance_rest_url) == ("ws://127.0.0.1:9000", "http://127.0.0.1:9000")
    assert load_settings(binance_ws_url="wss://stream.binance.com:9443/stream").binance_ws_url == (
        "wss://stream.binance.com:9443"
    )
    with pytest.raises(ConfigError, match="BINANCE_WS_URL"):
        load_settings(binance_ws_url="http://127.0.0.1:9000")
    with pytest.raises(ConfigError, match="BINANCE_REST_URL"):
        load_settings(binance_rest_url="127.0.0.1:9000")
