"""No untyped bag on the context: settings are typed and documented, injected objects are typed fields.

Why a test: `ctx.extras`, a dict any service could read a key from, grew to ~30 undocumented keys (issue 17,
item 8). These fail when a bag comes back or a tuning setting is added without its line in .env.example."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest
from pydantic import AliasChoices

from roottrading import cli
from roottrading.config import Settings, load_settings
from roottrading.config_tuning import TUNING_FIELDS, TuningSettings
from roottrading.runtime import Context, Host, Wiring

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def documented() -> dict[str, str]:
    """NAME -> value of every `NAME=value` line of .env.example, commented out (`# NAME=value`) or not."""
    out: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            out[match.group(1)] = match.group(2).strip()
    return out


def env_names(name: str) -> list[str]:
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        return [str(a).upper() for a in alias.choices]
    return [name.upper()]


def test_context_and_host_have_no_untyped_bag() -> None:
    fields = {f.name: f for f in dataclasses.fields(Context)}
    assert "extras" not in fields
    for name, hint in Context.__annotations__.items():  # strings (postponed annotations)
        assert hint not in ("Any", "dict[str, Any]", "dict[str, object]"), name
    assert "extras" not in inspect.signature(Host).parameters
    assert "extras" not in inspect.signature(cli._serve).parameters
    # every injected object has a declared type (no catch-all field on the wiring either)
    for f in dataclasses.fields(Wiring):
        assert f.type not in ("Any", "dict[str, Any]") and f.default is None, f.name


def test_every_tuning_setting_is_documented_in_env_example_with_its_default() -> None:
    doc = documented()
    assert TUNING_FIELDS and set(TUNING_FIELDS) <= set(Settings.model_fields)
    for name in TUNING_FIELDS:
        info = TuningSettings.model_fields[name]
        assert info.description, f"{name}: no description"
        names = [n for n in env_names(name) if n in doc]
        assert names, f"{name}: none of {env_names(name)} in .env.example"
        if info.default is not None:
            value = doc[names[0]]
            assert Settings(**{name: value}).model_dump()[name] == info.default, f"{name}: .env.example says {value}"


def test_tuning_settings_come_from_keywords_the_environment_and_the_old_rules_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert Settings(trader_reconcile_s=5).trader_reconcile_s == 5
    monkeypatch.setenv("TRADER_RECONCILE_S", "7")
    monkeypatch.setenv("ROOTTRADING_RULES", str(tmp_path / "a.yaml"))
    s = Settings()
    assert (s.trader_reconcile_s, s.risk_rules_path) == (7, tmp_path / "a.yaml")
    monkeypatch.delenv("ROOTTRADING_RULES")
    monkeypatch.setenv("RISK_RULES_PATH", str(tmp_path / "b.yaml"))
    assert Settings().risk_rules_path == tmp_path / "b.yaml"
    assert Settings().model_copy(update={"replay_speed": 0}).replay_speed == 0


def test_a_bad_tuning_value_stops_start_up_naming_it() -> None:
    from roottrading.config import ConfigError

    with pytest.raises(ConfigError, match="TRADER_RECONCILE_S"):
        load_settings(trader_reconcile_s=0)
