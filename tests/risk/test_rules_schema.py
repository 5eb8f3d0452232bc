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


def test_locking_rules_have_a_cooldown_with_sensible_defaults() -> None:
    r = load_rules().rules  # the packaged file names them
    assert r.strategy_loss_streak.cooldown == "4h" and r.strategy_loss_streak.cooldown_ms == 4 * 3_600_000
    assert r.max_drawdown.cooldown_ms == 12 * 3_600_000
    assert r.daily_loss_limit.cooldown is None  # its pause ends at 00:00 UTC anyway
    d = parse_rules("version: 1").rules  # and so do the built-in defaults when the file omits them
    assert (d.strategy_loss_streak.cooldown, d.max_drawdown.cooldown, d.daily_loss_limit.cooldown) == (
        "4h",
        "12h",
        None,
    )
    assert d.cooldown_ms("volatility") is None  # a rule that never locks has none


@pytest.mark.parametrize(
    ("value", "ms"), [("30m", 1_800_000), ("1h30m", 5_400_000), ("2 d", 172_800_000), ("90s", 90_000), ("null", None)]
)
def test_cooldown_durations(value: str, ms: int | None) -> None:
    r = parse_rules(f"version: 1\nrules:\n  strategy_loss_streak: {{cooldown: {value}}}\n").rules
    assert r.strategy_loss_streak.cooldown_ms == ms


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("-4h", "cooldown '-4h' is negative"),
        ("-30", "cooldown -30 is negative"),
        ("240", "cooldown 240 has no unit"),
        ("0m", "cooldown '0m' must be longer than 0"),
        ("soon", "cooldown 'soon' is not a duration"),
        ("4 hours", "is not a duration"),
        ("[4h]", "is not a duration"),
        ("true", "is not a duration"),
    ],
)
def test_invalid_cooldown_is_refused_with_a_clear_message(value: str, expected: str) -> None:
    with pytest.raises(RulesError) as err:
        parse_rules(f"version: 1\nrules:\n  max_drawdown: {{cooldown: {value}}}\n", "my-rules.yaml")
    msg = str(err.value)
    assert msg.startswith("my-rules.yaml: invalid rules: rules.max_drawdown.cooldown: ") and expected in msg
    assert "e.g. 30m, 4h, 1d" in msg  # says what would be right


def test_cooldown_only_on_rules_that_lock() -> None:
    with pytest.raises(RulesError, match=r"rules\.volatility\.cooldown: Extra inputs are not permitted"):
        parse_rules("version: 1\nrules:\n  volatility: {cooldown: 1h}\n")
