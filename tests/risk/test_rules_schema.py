"""rules.yaml validation: the packaged defaults load, and every kind of bad edit is refused with a message
that names the rule and the field."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from roottrading.risk import RulesError, load_rules, parse_rules
from roottrading.risk.rules import default_rules_path


def test_packaged_defaults_load_and_match_the_schema() -> None:
    rules = load_rules()
    assert default_rules_path().name == "rules.yaml"
    r = rules.rules
    assert r.daily_loss_limit.limit_pct == Decimal(3) and r.daily_loss_limit.action == "pause"
    assert r.max_open_cycles.limit == 5 and r.max_exposure_per_asset.action == "shrink"
    assert r.trading_hours.enabled is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules: {max_drawdwon: {limit_pct: 5}}", "rules.max_drawdwon: Extra inputs are not permitted"),
        ("rules: {max_open_cycles: {action: shrink}}", "action 'shrink' is not valid for this rule; use one of reject"),
        (
            "rules: {daily_loss_limit: {limit_pct: -1}}",
            "rules.daily_loss_limit.limit_pct: Input should be greater than 0",
        ),
        ("rules: {trading_hours: {start: '25:00'}}", "'25:00' is not a time HH:MM"),
        ("rules: {max_open_cycles: {limit: many}}", "rules.max_open_cycles.limit"),
        ("version: 2", "version"),
        ("rules: {max_open_cycles: {allowed_actions: [shrink]}}", "Extra inputs are not permitted"),
        ("rules: [", "not valid YAML"),
        ("- just a list", "top level must be a mapping"),
    ],
)
def test_bad_yaml_gives_a_clear_error(text: str, expected: str) -> None:
    with pytest.raises(RulesError) as err:
        parse_rules(text, "my-rules.yaml")
    assert str(err.value).startswith("my-rules.yaml: ")
    assert expected in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read rules file"):
        load_rules(tmp_path / "nope.yaml")


def test_partial_file_keeps_defaults_for_unnamed_rules() -> None:
    rules = parse_rules("version: 1\nrules:\n  symbol_blacklist: {symbols: [lunausdt]}\n")
    assert rules.rules.symbol_blacklist.symbols == ["LUNAUSDT"]
    assert rules.rules.max_drawdown.limit_pct == Decimal(10)
