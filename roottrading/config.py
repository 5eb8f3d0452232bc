"""One typed Settings object for the whole platform.

Sources, highest priority first: environment variables, `.env`, the YAML file named by
ROOTTRADING_CONFIG (default `roottrading.yaml` if present), then defaults. A bad value stops start-up
with one message naming the variable (`load_settings` raises `ConfigError`). Secrets are `SecretStr`:
they print as `**********` and `config show` masks them.
"""

from __future__ import annotations

import os
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from roottrading.config_tuning import TuningSettings
from roottrading.domain.market import INTERVAL_MS

SERVICE_PORTS: dict[str, int] = {
    "gateway": 5000,
    "analyzer": 5001,
    "trader": 5002,
    "coordinator": 5003,
    "dispatcher": 5004,
    "logger": 5005,
    "pnl": 5006,
    "risk": 5007,
    "scheduler": 5008,
    "portfolio": 8000,
}


class ConfigError(ValueError):
    """Configuration that cannot start the platform; the message names the variable."""


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the YAML file named by ROOTTRADING_CONFIG (keys are the setting names, any case)."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = os.environ.get("ROOTTRADING_CONFIG", "roottrading.yaml")
        self._data: dict[str, Any] = {}
        if Path(path).is_file():
            loaded = yaml.safe_load(Path(path).read_text()) or {}
            if not isinstance(loaded, dict):
                raise ConfigError(f"ROOTTRADING_CONFIG {path}: top level must be a mapping")
            self._data = {str(k).lower(): v for k, v in loaded.items()}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


# Settings that may hold a secret and so may come from a file: `<NAME>_FILE=/run/secrets/...` (the convention of
# Docker's official images; Docker and Kubernetes mount secrets as files, which never show in `docker inspect`,
# the process environment or a crash dump of it). The URLs are here because they may carry a password.
FILE_SETTINGS = (
    "api_token",
    "binance_api_key",
    "binance_secret_key",
    "ccxt_api_key",
    "ccxt_secret",
    "ccxt_password",
    "database_url",
    "bus_url",
    "redis_url",
)


class _FileSecretsSource(PydanticBaseSettingsSource):
    """`API_TOKEN_FILE=/run/secrets/api_token` -> api_token = the file's content, trailing newline removed.

    Why not pydantic-settings' `secrets_dir`: it reads a whole directory by field name, so a secret silently
    goes missing when a file is misnamed; a named `*_FILE` variable fails loudly, names its variable, and
    lets each secret live wherever the orchestrator mounts it. Setting both X and X_FILE is refused: which one
    wins would be a guess."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        from dotenv import dotenv_values

        env_file = self.settings_cls.model_config.get("env_file")
        dotenv = dotenv_values(env_file) if isinstance(env_file, str) and Path(env_file).is_file() else {}
        # The environment and .env are two levels, as for every setting: X_FILE in the environment beats X in
        # .env; only X and X_FILE set at the same level are ambiguous.
        levels = [{k.upper(): v for k, v in os.environ.items()}, {k.upper(): v for k, v in dotenv.items() if v}]
        out: dict[str, Any] = {}
        for name in FILE_SETTINGS:
            var = f"{name.upper()}_FILE"
            level = next((lv for lv in levels if lv.get(var)), None)
            if level is None:
                continue
            if level.get(name.upper()):
                raise ConfigError(f"set either {name.upper()} or {var}, not both")
            path = str(level[var])
            try:
                out[name] = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ConfigError(f"{var}: cannot read {path}: {exc.strerror}") from None
        return out


class Settings(TuningSettings):
    """Every setting of the platform; the services' tuning fields come from `TuningSettings` (config_tuning.py)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False)

    # --- trading ---
    trading_mode: Literal["live", "demo"] = Field("demo", description="live sends real orders; demo simulates them")
    symbols: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["BTCUSDT", "ETHUSDT"],
        description="comma-separated Binance symbols, e.g. BTCUSDT,ETHUSDT",
    )
    interval: str = Field("1m", description="base candle interval (1m, 5m, 15m, ...)")
    quote_asset: str = Field("USDT", description="currency in which portfolio value is counted")
    pocket_config: Annotated[dict[str, Decimal], NoDecode] = Field(
        default_factory=lambda: {"active": Decimal(60), "buffer": Decimal(30), "safety": Decimal(10)},
        description="capital pockets in percent, JSON or active:60,buffer:30,safety:10; must sum to 100",
    )
    strategies_dir: Path | None = Field(None, description="folder of user strategy files")
    strategies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated strategies to enable (empty: all loaded)"
    )
    universe_config: Path | None = Field(
        None,
        description="YAML file of the pair universe (docs/universe.md); unset: exactly SYMBOLS, never changed",
    )
    analyzer_workers: int = Field(0, ge=0, le=64, description="strategy worker processes (0: in the service process)")
    analyzer_consensus: int = Field(
        0, ge=0, description="publish a signal only when this many strategies agree (0/1: off)"
    )
    analyzer_eval_limit_ms: float = Field(
        500.0,
        ge=0,
        description="time limit per strategy evaluation (measured); a strategy over it on "
        "ANALYZER_EVAL_OVERRUNS candles in a row is disabled for that symbol (0: no limit)",
    )
    analyzer_eval_overruns: int = Field(3, ge=1, description="consecutive over-limit evaluations before disabling")
    analyzer_worker_timeout_s: float = Field(
        60.0, gt=0, description="a worker process that does not answer for this long is killed and restarted"
    )

    # --- exchange ---
    binance_api_key: SecretStr = Field(SecretStr(""), description="Binance API key (live mode)")
    binance_secret_key: SecretStr = Field(SecretStr(""), description="Binance API secret (live mode)")
    binance_rest_url: str = Field(
        "https://api.binance.com", description="Binance REST base URL, no path (local simulator: http://127.0.0.1:9000)"
    )
    binance_ws_url: str = Field(
        "wss://stream.binance.com:9443",
        description="Binance WebSocket base URL, no path: /stream?streams=... and /ws/<listenKey> are added"
        " (local simulator: ws://127.0.0.1:9000)",
    )
    binance_testnet: bool = Field(False, description="use Binance's spot testnet URLs")
    exchange: str = Field(
        "binance",
        description="binance: the native Binance adapter (the soak-tested path); ccxt:<id> (e.g. ccxt:kraken): any exchange"
        " through ccxt (docs/exchanges.md; ccxt:binance uses the BINANCE_* keys and URL)",
    )
    ccxt_api_key: SecretStr = Field(SecretStr(""), description="API key for EXCHANGE=ccxt:<id> (not binance)")
    ccxt_secret: SecretStr = Field(SecretStr(""), description="API secret for EXCHANGE=ccxt:<id> (not binance)")
    ccxt_password: SecretStr = Field(SecretStr(""), description="API passphrase, for exchanges that have one")
    ccxt_rest_url: str = Field("", description="EXCHANGE=ccxt:<id>: every API URL moved to this host (a simulator)")
    ccxt_poll_interval_s: float = Field(
        1.0,
        gt=0,
        le=60,
        description="EXCHANGE=ccxt:<id>: how often the orders placed are polled for changes when there is no"
        " user stream (the exchange's ccxt class has no watch methods, CCXT_USER_STREAM=poll, or the stream is down)",
    )
    ccxt_user_stream: Literal["auto", "poll"] = Field(
        "auto",
        description="EXCHANGE=ccxt:<id>: auto = order, fill and balance updates over ccxt.pro's websocket watch"
        " methods where the exchange has them (polling otherwise, and while the stream is down); poll = REST"
        " polling only",
    )
    ccxt_reconcile_interval_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="EXCHANGE=ccxt:<id>: while the user stream is live, the orders are still polled this often"
        " (and once after each reconnect) so an update lost with a dropped socket is found",
    )

    # --- infrastructure ---
    bus_url: str = Field("memory://", description="memory:// (embedded) or redis://host:6379/0")
    bus_prefix: str = Field("rt", description="namespace of the bus's streams (several platforms on one Redis)")
    database_url: str = Field(
        "sqlite+aiosqlite:///./data/roottrading.db",
        description="sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db",
    )
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis for caches (and the bus if chosen)")

    # --- HTTP ---
    http_host: str = Field("127.0.0.1", description="bind address; 127.0.0.1 unless you mean to expose it")
    http_port: int = Field(8000, ge=1, le=65535, description="port of the one-process server")
    api_token: SecretStr = Field(
        SecretStr(""),
        description="bearer token for mutating routes (generated if empty); every route when HTTP_HOST is not"
        " loopback, and then it must be set",
    )
    cors_allow_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated origins allowed to call the API from a browser page they serve"
        " (e.g. https://dash.example.com); empty: none (the dashboard is served by the API itself)",
    )
    service_ports: dict[str, int] = Field(default_factory=lambda: dict(SERVICE_PORTS))

    # --- logs ---
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", description="DEBUG also shows third-party libraries' logs (held at WARNING otherwise)"
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: readable coloured lines on a terminal, JSON otherwise; json or console forces one"
    )
    log_json: bool | None = Field(None, description="deprecated, use LOG_FORMAT (true: json, false: console)")
    data_dir: Path = Field(Path("./data"), description="where the SQLite file, tokens and Parquet files live")

    # --- monitoring (docs/operations.md) ---
    metrics_enabled: bool = Field(True, description="serve GET /metrics (Prometheus) and time the bus handlers")
    notify_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Apprise URLs for alerts, separated by spaces or commas (empty: none sent)"
    )
    notify_events: Annotated[list[str] | None, NoDecode] = Field(
        None, description="comma-separated alert events to send (empty: all); see docs/operations.md"
    )
    notify_dedupe_s: float = Field(300.0, ge=0, description="the same alert is sent once within this window")
    notify_rate_per_min: int = Field(20, ge=1, description="alerts sent per minute at most (the rest dropped)")
    notify_retries: int = Field(3, ge=1, le=10, description="attempts per channel before an alert is logged as lost")
    telegram_bot_token: SecretStr = Field(SecretStr(""), description="Telegram bot token (empty: no bot)")
    telegram_chat_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="comma-separated chat ids allowed to command the bot (others get nothing)"
    )
    telegram_base_url: str = Field("https://api.telegram.org/bot", description="Bot API base URL (the token follows)")
    telegram_poll_timeout_s: int = Field(30, ge=0, le=60, description="getUpdates long-poll timeout")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        files = _FileSecretsSource(settings_cls)
        return init_settings, env_settings, files, dotenv_settings, _YamlSource(settings_cls), file_secret_settings

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    @property
    def effective_log_format(self) -> Literal["auto", "json", "console"]:
        """LOG_FORMAT, or the older LOG_JSON when only that one is set (an existing .env keeps working)."""
        if self.log_format == "auto" and self.log_json is not None:
            return "json" if self.log_json else "console"
        return self.log_format

    @field_validator("symbols", mode="before")
    @classmethod
    def _split_symbols(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [s for s in (p.strip() for p in v.split(",")) if s]
        if isinstance(v, list):
            out = [str(s).upper() for s in v]
            for s in out:
                if not s.isalnum():
                    raise ValueError(f"symbol {s!r} must be letters and digits like BTCUSDT")
            if not out:
                raise ValueError("at least one symbol is required")
            return out
        return v

    @field_validator("notify_urls", mode="before")
    @classmethod
    def _split_urls(cls, v: Any) -> Any:
        return [u for u in v.replace(",", " ").split() if u] if isinstance(v, str) else v

    @field_validator("telegram_chat_ids", mode="before")
    @classmethod
    def _split_chats(cls, v: Any) -> Any:
        return [c for c in (p.strip() for p in v.split(",")) if c] if isinstance(v, str) else v

    @field_validator("notify_events", mode="before")
    @classmethod
    def _check_events(cls, v: Any) -> Any:
        from roottrading.notify.events import EVENTS

        if isinstance(v, str):
            v = [e.strip() for e in v.split(",") if e.strip()] or None
        for e in v or []:
            if e not in EVENTS:
                raise ValueError(f"unknown notify event {e!r}; known: {', '.join(EVENTS)}")
        return v

    @field_validator("strategies", mode="before")
    @classmethod
    def _split_names(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [s.strip() for s in v.split(",") if s.strip()]
        return v

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _split_origins(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [s.strip().rstrip("/") for s in v.split(",") if s.strip()]
        if isinstance(v, list):
            for origin in v:
                if origin != "*" and not str(origin).startswith(("http://", "https://")):
                    raise ValueError(f"origin {origin!r} must look like https://host[:port]")
        return v

    @field_validator("interval")
    @classmethod
    def _check_interval(cls, v: str) -> str:
        if v not in INTERVAL_MS:
            raise ValueError(f"unknown interval {v!r}; use one of {', '.join(INTERVAL_MS)}")
        return v

    @field_validator("pocket_config", mode="before")
    @classmethod
    def _parse_pockets(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().startswith("{"):
            import json

            try:
                return json.loads(v)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON: {exc}") from None
        if isinstance(v, str):
            pairs = [p.split(":", 1) for p in v.split(",") if p.strip()]
            if any(len(p) != 2 for p in pairs):
                raise ValueError("expected name:percent pairs like active:60,buffer:30,safety:10")
            return {k.strip(): v.strip() for k, v in pairs}
        return v

    @field_validator("pocket_config")
    @classmethod
    def _check_pockets(cls, v: dict[str, Decimal]) -> dict[str, Decimal]:
        if any(p < 0 for p in v.values()):
            raise ValueError("pocket percentages cannot be negative")
        if sum(v.values()) != 100:
            raise ValueError(f"pocket percentages must sum to 100, got {sum(v.values())}")
        return v

    @field_validator("binance_ws_url")
    @classmethod
    def _ws_base(cls, v: str) -> str:
        """The base only: the gateway adds `/stream?streams=...` and the user stream `/ws/<listenKey>`, so a
        pasted `.../ws` (as Binance's docs and the simulator's banner show raw streams) would double a path."""
        if not v.startswith(("ws://", "wss://")):
            raise ValueError("use ws://host:port or wss://host:port, e.g. ws://127.0.0.1:9000 for the local simulator")
        v = v.rstrip("/")
        for tail in ("/ws", "/stream"):
            if v.endswith(tail):
                v = v[: -len(tail)]
        return v

    @field_validator("binance_rest_url")
    @classmethod
    def _rest_base(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("use http(s)://host:port, e.g. http://127.0.0.1:9000 for the local simulator")
        return v.rstrip("/")

    @field_validator("bus_url")
    @classmethod
    def _check_bus(cls, v: str) -> str:
        if v.split("://", 1)[0] not in ("memory", "redis", "rediss", "nats"):
            raise ValueError("use memory://, redis://host:port/db or nats://host:port")
        return v

    @field_validator("exchange")
    @classmethod
    def _check_exchange(cls, v: str) -> str:
        v = v.strip().lower()
        if v == "binance" or (v.startswith("ccxt:") and v[5:].replace("_", "").isalnum()):
            return v
        raise ValueError("use binance (the native adapter) or ccxt:<id>, e.g. ccxt:kraken")

    @property
    def ccxt_id(self) -> str | None:
        """The ccxt exchange id when EXCHANGE=ccxt:<id>, else None."""
        return self.exchange[5:] if self.exchange.startswith("ccxt:") else None

    @model_validator(mode="after")
    def _live_needs_keys(self) -> Settings:
        if self.trading_mode != "live":
            return self
        if self.ccxt_id not in (None, "binance"):
            if not (self.ccxt_api_key.get_secret_value() and self.ccxt_secret.get_secret_value()):
                raise ValueError(f"TRADING_MODE=live with EXCHANGE={self.exchange} needs CCXT_API_KEY and CCXT_SECRET")
        elif not (self.binance_api_key.get_secret_value() and self.binance_secret_key.get_secret_value()):
            raise ValueError("TRADING_MODE=live needs BINANCE_API_KEY and BINANCE_SECRET_KEY")
        return self

    def masked(self) -> dict[str, Any]:
        """Every setting, secrets replaced by '**********' (or '' when unset)."""
        out: dict[str, Any] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                out[name] = "**********" if value.get_secret_value() else ""
            elif name.endswith("_url") and isinstance(value, str):
                out[name] = mask_url(value)
            elif isinstance(value, Path | Decimal):  # JSON-ready, and a Decimal keeps its exact digits
                out[name] = str(value)
            elif isinstance(value, dict):
                out[name] = {k: str(v) for k, v in value.items()}
            else:
                out[name] = value
        return out

    def ensure_api_token(self) -> tuple[str, bool]:
        """The API token; generated once and kept in data_dir/api_token when unset. Returns (token, created)."""
        token = self.api_token.get_secret_value()
        if token:
            return token, False
        path = self.data_dir / "api_token"
        if path.is_file():
            return path.read_text().strip(), False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(32)
        path.write_text(token + "\n")
        path.chmod(0o600)
        self.api_token = SecretStr(token)
        return token, True


def mask_url(url: str) -> str:
    """`postgresql://user:pw@host/db` -> `postgresql://user:****@host/db`: a URL's password never printed."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return parts._replace(netloc=f"{user}:****@{netloc[1]}").geturl()


def load_settings(**overrides: Any) -> Settings:
    """Build Settings or raise ConfigError with one line per bad variable, named as in the environment."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = str(err["loc"][0]).upper() if err["loc"] else "CONFIG"
            lines.append(f"{name}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(lines)) from None
    except SettingsError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from None
