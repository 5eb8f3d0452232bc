"""`--set KEY=VALUE`: ANY setting the platform reads, validated by the same typed models the live services use.

Why here and not a second list of options: a backtest must answer "what would the platform have done with
these settings", so the overrides go to the very objects the services are built from:

  KEY=VALUE                    a field of the platform Settings (config.py), by name or env name, any case:
                               `strategies=...`, `pocket_config=active:80,buffer:10,safety:10`, `quote_asset=...`
  coordinator.FIELD=VALUE      the coordinator's settings (services/coordinator/config.py; COORDINATOR_FIELD
                               too): filters (min_strength, cooldown_s, blocked_regimes...), sizing (risk_pct,
                               default_stop_pct, stake_quote...), pocket
  risk.RULE.FIELD=VALUE        rules.yaml (risk/rules.py): e.g. risk.max_open_cycles.limit=3,
                               risk.volatility.enabled=false (VALUE is read as a YAML scalar or list)
  sim.FIELD=VALUE              the simulated exchange (exchange/sim/config.py): maker_fee, taker_fee (fractions,
                               0.001 = 0.1 %), slippage_bps, volume_cap, latency_ms
  jobs.NAME=SECONDS            market-time period of a periodic job: trader_balances_s, trader_reconcile_s,
                               portfolio_reallocate_s, portfolio_reconcile_s, pnl_snapshot_s, risk_locks_s
                               (backtest defaults: JOB_DEFAULTS); `NAME=SECONDS` (the setting) is the same

An unknown key or a bad value raises OverrideError naming it. Settings that belong to the backtest itself
(database, bus, data folder, symbols, interval, mode) are refused with the option to use instead.
Everything not overridden comes from where the live platform reads it (environment, .env, YAML, rules file).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from roottrading.backtest.model import BacktestConfig
from roottrading.config import ConfigError, Settings, load_settings
from roottrading.exchange.sim import SimConfig
from roottrading.risk.rules import RulesError, default_rules_path, parse_rules
from roottrading.runtime.wiring import Wiring
from roottrading.services.coordinator.config import CoordinatorConfig

# the backtest decides these; overriding them would break the replay or contradict an option
OWN = {
    "database_url": "the replay uses its own temporary store",
    "bus_url": "the replay uses the synchronous memory bus",
    "data_dir": "the replay uses a temporary folder",
    "symbols": "use --symbols",
    "interval": "use --interval",
    "trading_mode": "a backtest always simulates orders",
    "analyzer_workers": "the replay evaluates strategies in its own process (deterministic order)",
    "risk_rules_path": "the replay writes its own rules file: the live one (ROOTTRADING_RULES, ...) with risk.* applied",
    "risk_initial_equity": "use --balance",
    "portfolio_start_capital": "use --balance",
}
# the platform settings (config_tuning.py) that are periods of periodic jobs, run on market time in a backtest
JOB_SETTINGS = {
    "trader_balances_s",
    "trader_reconcile_s",
    "portfolio_reallocate_s",
    "portfolio_reconcile_s",
    "pnl_snapshot_s",
    "risk_locks_s",
}
# Market-time periods of the services' periodic jobs in a backtest (live: 30-300 s of wall time). Each run
# costs 1.5-3 ms (store reads and writes); at the live periods a 1m backtest would spend ~12 ms per candle in
# them (80 candles/s). What they do between fills: re-mark balances and pockets at the market (balances,
# reallocate: the equity that sizing and the drawdown rule read; every fill re-publishes balances anyway),
# repair drift between the exchange and the store (reconcile: none in a failure-free simulation), and store
# statistics (snapshot: no effect on trading). Lock expiry keeps the live period (cheap, and it decides when
# a paused strategy trades again). `--set jobs.NAME=SECONDS` restores any live period.
JOB_DEFAULTS: dict[str, float] = {
    "trader_balances_s": 3_600.0,
    "portfolio_reallocate_s": 3_600.0,
    "trader_reconcile_s": 86_400.0,
    "portfolio_reconcile_s": 86_400.0,
    "pnl_snapshot_s": 86_400.0,
}


class OverrideError(ValueError):
    """A `--set` that cannot be applied; the message names the key."""


@dataclass
class PlatformOverrides:
    """`--set` parsed and validated, grouped by the object each part configures."""

    settings: dict[str, str] = field(default_factory=dict)
    coordinator: dict[str, Any] = field(default_factory=dict)
    risk: dict[str, dict[str, Any]] = field(default_factory=dict)
    sim: dict[str, Any] = field(default_factory=dict)
    jobs: dict[str, float] = field(default_factory=dict)

    # ---- what the replay builds from them -----------------------------------------------------------
    def settings_for(self, config: BacktestConfig, **own: Any) -> Settings:
        """The platform Settings of the run: the user's (env, .env, YAML) + `--set` + the backtest's own."""
        strategies = ",".join(config.strategies) if config.strategies else self.settings.get("strategies")
        values: dict[str, Any] = {
            **self.settings,
            "symbols": ",".join(config.symbols),
            "interval": config.interval,
            "trading_mode": "demo",
            "bus_url": "memory://sync",
            "analyzer_workers": 0,
            "log_level": os.environ.get("LOG_LEVEL", "WARNING"),
            **own,
        }
        if strategies:
            values["strategies"] = strategies
        if "quote_asset" not in self.settings:
            quote = infer_quote(config.symbols)
            if quote is not None:
                values["quote_asset"] = quote
        try:
            return load_settings(**values)
        except ConfigError as exc:
            raise OverrideError(str(exc)) from None

    def sim_config(self) -> SimConfig:
        return SimConfig(**self.sim)

    def coordinator_config(self, config: BacktestConfig) -> CoordinatorConfig:
        values = {"initial_equity": config.balance, **self.coordinator}
        if config.stake is not None:
            values["stake_quote"] = config.stake
        try:
            return CoordinatorConfig(**values)
        except ValidationError as exc:
            raise OverrideError(_pydantic_message("coordinator.", exc)) from None

    def rules_text(self, base: Path | None = None) -> str:
        """The rules file the run uses: the one the live risk manager would read, with `risk.*` applied."""
        path = base or _live_rules_path()
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        rules = data.setdefault("rules", {})
        for rule, fields in self.risk.items():
            current = rules.get(rule) or {}
            rules[rule] = {**current, **fields}
        text = yaml.safe_dump(data, sort_keys=False)
        try:
            parse_rules(text, "--set risk.*")
        except RulesError as exc:
            raise OverrideError(str(exc)) from None
        return text

    def tuning_for(self, config: BacktestConfig, work: Path) -> dict[str, Any]:
        """The services' tuning settings (config_tuning.py) of a replay in `work`, for `settings_for(**own)`:
        the rules file with `risk.*` applied (written there), the start balance, the jobs' periods."""
        rules = work / "rules.yaml"
        rules.write_text(self.rules_text(), encoding="utf-8")
        return {
            "risk_rules_path": rules,
            # paper trading stores the whole simulated account after every change so that it survives a
            # restart; a replay never restarts and its store is thrown away (7 % of its time, measured)
            "trader_paper_account_stored": False,
            "portfolio_start_capital": config.balance,
            "risk_initial_equity": config.balance,
            **JOB_DEFAULTS,
            **self.jobs,
        }

    def wiring_for(self, config: BacktestConfig, quote: str) -> Wiring:
        """The objects the replay gives the services: the coordinator's and the simulator's config, the
        simulated account's balance."""
        return Wiring(
            coordinator=self.coordinator_config(config),
            sim_config=self.sim_config(),
            demo_balances=_funding(quote, config.balance),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "settings": dict(self.settings),
            "coordinator": {k: str(v) for k, v in self.coordinator.items()},
            "risk": self.risk,
            "sim": {k: str(v) for k, v in self.sim.items()},
            "jobs": dict(self.jobs),
        }


QUOTES = ("USDT", "FDUSD", "BUSD", "USDC", "TUSD", "EUR", "TRY", "BTC", "ETH", "BNB")


def infer_quote(symbols: tuple[str, ...] | list[str]) -> str | None:
    """The quote asset all `symbols` share (BTCBUSD, ETHBUSD -> BUSD), else None (QUOTE_ASSET decides). The
    simulated account is funded in it, so a BUSD market is not run on a USDT-only account."""
    for q in QUOTES:
        if symbols and all(s.upper().endswith(q) and len(s) > len(q) for s in symbols):
            return q
    return None


def _live_rules_path() -> Path:
    """Where the live risk manager reads its rules (services/risk/service.py rules_path_for, without a host)."""
    try:
        settings = load_settings()
    except ConfigError:
        return default_rules_path()
    if settings.risk_rules_path:
        return Path(settings.risk_rules_path)
    local = Path(settings.data_dir) / "rules.yaml"
    return local if local.is_file() else default_rules_path()


def _pydantic_message(prefix: str, exc: ValidationError) -> str:
    return "; ".join(f"--set {prefix}{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


def split_assignment(text: str, option: str = "--set") -> tuple[str, str]:
    if "=" not in text:
        raise OverrideError(f"{option} {text!r}: expected KEY=VALUE")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key:
        raise OverrideError(f"{option} {text!r}: empty key")
    return key, value.strip()


def parse_overrides(items: Mapping[str, str] | list[str]) -> PlatformOverrides:
    """Parse and validate `--set` items (a mapping KEY -> VALUE, or a list of "KEY=VALUE")."""
    pairs = [split_assignment(x) for x in items] if isinstance(items, list) else list(items.items())
    ov = PlatformOverrides()
    for key, value in pairs:
        _one(ov, key, value)
    # validate each group as a whole, so a bad value is caught before any service starts
    if ov.settings:
        try:
            load_settings(**ov.settings)
        except ConfigError as exc:
            raise OverrideError(str(exc).replace("invalid configuration: ", "--set ")) from None
    if ov.coordinator:
        try:
            CoordinatorConfig(**ov.coordinator)
        except ValidationError as exc:
            raise OverrideError(_pydantic_message("coordinator.", exc)) from None
    if ov.sim:
        try:
            SimConfig(**ov.sim)
        except (ValueError, TypeError) as exc:
            raise OverrideError(f"--set sim.*: {exc}") from None
    if ov.risk:
        ov.rules_text(default_rules_path())
    return ov


def _one(ov: PlatformOverrides, key: str, value: str) -> None:
    low = key.lower()
    if low.startswith("coordinator_"):
        low = "coordinator." + low.removeprefix("coordinator_")
    head, _, rest = low.partition(".")
    if rest and head == "coordinator":
        if rest not in CoordinatorConfig.model_fields:
            raise OverrideError(
                f"--set {key}: unknown coordinator setting {rest!r}; known: {', '.join(CoordinatorConfig.model_fields)}"
            )
        ov.coordinator[rest] = (
            _yaml_value(value) if rest in ("blocked_regimes", "max_quantity", "max_notional") else value
        )
        return
    if rest and head == "risk":
        rule, _, fld = rest.partition(".")
        from roottrading.risk.rules import RuleSet

        if rule not in RuleSet.model_fields:
            raise OverrideError(f"--set {key}: unknown risk rule {rule!r}; known: {', '.join(RuleSet.model_fields)}")
        if not fld:
            raise OverrideError(f"--set {key}: expected risk.RULE.FIELD=VALUE, e.g. risk.{rule}.enabled=false")
        ov.risk.setdefault(rule, {})[fld] = _yaml_value(value)
        return
    if rest and head == "sim":
        fields = {f.name: f for f in dataclasses.fields(SimConfig)}
        if rest not in fields:
            raise OverrideError(f"--set {key}: unknown simulated-exchange setting {rest!r}; known: {', '.join(fields)}")
        ov.sim[rest] = _sim_value(key, rest, value)
        return
    if not rest and low in JOB_SETTINGS:  # the setting of a job period: the same as jobs.NAME
        head, rest = "jobs", low
    if rest and head == "jobs":
        if rest not in JOB_SETTINGS:
            raise OverrideError(f"--set {key}: unknown job period {rest!r}; known: {', '.join(sorted(JOB_SETTINGS))}")
        try:
            seconds = float(value)
        except ValueError:
            raise OverrideError(f"--set {key}: {value!r} is not a number of seconds") from None
        if seconds <= 0:
            raise OverrideError(f"--set {key}: must be > 0 seconds")
        ov.jobs[rest] = seconds
        return
    if rest:
        raise OverrideError(
            f"--set {key}: unknown section {head!r}; use a platform setting, coordinator.*, risk.*, sim.* or jobs.*"
        )
    if low in OWN:
        raise OverrideError(f"--set {key}: not settable in a backtest ({OWN[low]})")
    if low not in Settings.model_fields:
        raise OverrideError(
            f"--set {key}: unknown setting; see `roottrading config show` for the platform's settings, "
            "or use coordinator.*, risk.*, sim.*, jobs.*"
        )
    ov.settings[low] = value


def _yaml_value(value: str) -> Any:
    try:
        return yaml.safe_load(value) if value else None
    except yaml.YAMLError:
        return value


def _sim_value(key: str, name: str, value: str) -> Any:
    if name in ("latency_ms", "history_limit"):
        try:
            return int(value)
        except ValueError:
            raise OverrideError(f"--set {key}: {value!r} is not an integer") from None
    if name == "volume_cap" and value.lower() in ("", "none", "null"):
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        raise OverrideError(f"--set {key}: {value!r} is not a number") from None


def _funding(quote: str, balance: Decimal) -> dict[str, Decimal]:
    """The replay account's balances: `balance` of the quote asset and nothing else. The demo exchange starts
    from its default account (DEMO_BALANCES, in USDT) and applies these on top, so every default asset other
    than the quote is set to 0: a BTC-quoted run holding 10,000 USDT beside its BTC would hold an asset the
    trader cannot price, and its balances reports (what sizing reads) would carry no total."""
    from roottrading.services.trader.exchange_factory import DEMO_BALANCES

    out = {asset: Decimal(0) for asset in DEMO_BALANCES if asset != quote}
    out[quote] = balance
    return out
