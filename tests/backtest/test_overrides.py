"""`--set KEY=VALUE`: any platform setting, validated by the services' own typed models, errors name the key."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from roottrading.backtest.overrides import JOB_DEFAULTS, OverrideError, parse_overrides
from tests.backtest.helpers import config


@pytest.mark.parametrize(
    ("item", "named"),
    [
        ("no_such_setting=1", "no_such_setting"),
        ("pocket_config=active:50,buffer:10", "POCKET_CONFIG"),
        ("analyzer_consensus=-1", "ANALYZER_CONSENSUS"),
        ("coordinator.risk_pct=abc", "coordinator.risk_pct"),
        ("coordinator.nope=1", "coordinator.nope"),
        ("risk.max_open_cycles.limit=-1", "max_open_cycles.limit"),
        ("risk.max_opn_cycles.limit=1", "max_opn_cycles"),
        ("risk.max_open_cycles.limt=1", "limt"),
        ("sim.taker_fee=2", "sim."),
        ("sim.slippage=3", "sim.slippage"),
        ("jobs.trader_balances_s=0", "jobs.trader_balances_s"),
        ("database_url=sqlite://x", "database_url"),
        ("symbols=ETHUSDT", "--symbols"),
        ("foo.bar=1", "foo.bar"),
        ("trader_reconcile_s=0", "trader_reconcile_s"),
        ("risk_initial_equity=5", "--balance"),
        ("portfolio_start_capital=5", "--balance"),
        ("risk_rules_path=/x.yaml", "risk.*"),
    ],
)
def test_unknown_key_or_bad_value_is_an_error_naming_it(item: str, named: str) -> None:
    key, value = item.split("=", 1)
    with pytest.raises(OverrideError) as err:
        parse_overrides({key: value})
    assert named in str(err.value)


def test_valid_overrides_reach_the_objects_the_services_are_built_from(tmp_path: object) -> None:
    ov = parse_overrides(
        [
            "COORDINATOR_RISK_PCT=0.5",
            "coordinator.min_strength=WEAK",
            "risk.volatility.enabled=false",
            "risk.max_open_cycles.limit=2",
            "sim.taker_fee=0.00075",
            "sim.latency_ms=50",
            "pocket_config=active:80,buffer:10,safety:10",
            "jobs.trader_balances_s=60",
        ]
    )
    cfg = config()
    assert ov.coordinator_config(cfg).risk_pct == Decimal("0.5")
    assert ov.coordinator_config(cfg).min_strength.value == "WEAK"
    assert ov.sim_config().taker_fee == Decimal("0.00075") and ov.sim_config().latency_ms == 50
    from roottrading.risk.rules import parse_rules

    rules = parse_rules(ov.rules_text()).rules
    assert rules.volatility.enabled is False and rules.max_open_cycles.limit == 2
    settings = ov.settings_for(cfg, database_url="sqlite+aiosqlite:///:memory:")
    assert settings.pocket_config["active"] == 80 and settings.strategies == list(cfg.strategies)
    assert settings.bus_url == "memory://sync" and settings.symbols == ["BTCUSDT"]
    assert ov.jobs == {"trader_balances_s": 60.0}


def test_stake_goes_through_the_coordinator_setting() -> None:
    ov = parse_overrides({})
    assert ov.coordinator_config(config(stake=Decimal(250))).stake_quote == Decimal(250)
    assert ov.coordinator_config(config()).stake_quote is None


def test_the_services_tuning_reaches_the_replay_as_settings_and_objects_as_wiring(tmp_path: Path) -> None:
    """The replay's tuning is typed settings (config_tuning.py) and its objects a Wiring: no untyped bag. A job
    period given as the platform setting (`trader_reconcile_s=5`) is the same as `jobs.trader_reconcile_s=5`."""
    ov = parse_overrides(["trader_reconcile_s=5", "jobs.pnl_snapshot_s=7", "risk.volatility.enabled=false"])
    assert ov.jobs == {"trader_reconcile_s": 5.0, "pnl_snapshot_s": 7.0} and not ov.settings
    cfg = config()
    settings = ov.settings_for(cfg, database_url="sqlite+aiosqlite:///:memory:", **ov.tuning_for(cfg, tmp_path))
    assert (settings.trader_reconcile_s, settings.pnl_snapshot_s) == (5.0, 7.0)
    assert settings.trader_balances_s == JOB_DEFAULTS["trader_balances_s"]
    assert settings.portfolio_start_capital == settings.risk_initial_equity == cfg.balance
    assert settings.risk_rules_path == tmp_path / "rules.yaml"
    assert "enabled: false" in settings.risk_rules_path.read_text()
    wiring = ov.wiring_for(cfg, settings.quote_asset)
    assert wiring.demo_balances == {settings.quote_asset: cfg.balance}
    assert wiring.coordinator == ov.coordinator_config(cfg) and wiring.sim_config == ov.sim_config()
