"""The universe YAML: a good file loads, a bad one is refused with the key path and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from roottrading.universe.config import (
    UniverseConfigError,
    VolumeSource,
    load_universe,
    parse_duration_ms,
    parse_universe,
    static_universe,
)

GOOD = """
refresh: 4h
lookback: 1d
source: {type: volume, top: 50, keep_top: 60, quote: USDT}
filters:
  - {type: age, min_days: 30}
  - {type: price, min: 0.001}
  - {type: spread, max_pct: 0.5}
  - {type: volatility, min: 0.005, max: 0.3}
  - {type: min_notional, stake: 20}
  - {type: patterns, blacklist: ["*UP", "*DOWN"], whitelist: ["*USDT"]}
scoring: {size: 10, keep_rank: 15, cooldown: 12h, weights: {volatility: 2, momentum: 1, volume: 1}}
forced: btcusdt
"""


def test_a_full_chain_loads(tmp_path: Path) -> None:
    p = tmp_path / "u.yaml"
    p.write_text(GOOD)
    cfg = load_universe(p)
    assert isinstance(cfg.source, VolumeSource) and cfg.source.keep == 60
    assert (cfg.refresh_ms, cfg.lookback_ms) == (4 * 3_600_000, 86_400_000)
    assert [f.type for f in cfg.filters] == ["age", "price", "spread", "volatility", "min_notional", "patterns"]
    assert cfg.scoring is not None and cfg.scoring.cooldown_ms == 12 * 3_600_000 and cfg.scoring.keep == 15
    assert cfg.forced == ["BTCUSDT"] and not cfg.is_static


def test_static_default_is_symbols() -> None:
    cfg = static_universe(["BTCUSDT", "ETHUSDT"])
    assert cfg.is_static and cfg.source.symbols == ["BTCUSDT", "ETHUSDT"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, "source: Field required"),
        ({"source": {"type": "nope"}}, "source: Input tag 'nope'"),
        ({"source": {"type": "volume", "top": 0}}, "source.volume.top: Input should be greater than 0"),
        ({"source": {"type": "volume", "top": 10, "keep_top": 5}}, "keep_top (5) cannot be below top (10)"),
        ({"source": {"type": "static", "symbols": []}}, "at least one symbol"),
        ({"source": {"type": "static", "symbols": ["BTC-USDT"]}}, "letters and digits"),
        (
            {"source": {"type": "static", "symbols": ["A"]}, "filters": [{"type": "spread", "max": 1}]},
            "filters.0.spread.max_pct: Field required",
        ),
        (
            {"source": {"type": "static", "symbols": ["A"]}, "filters": [{"type": "price", "min": 5, "max": 1}]},
            "min (5.0) is above max (1.0)",
        ),
        (
            {"source": {"type": "static", "symbols": ["A"]}, "scoring": {"size": 5, "keep_rank": 2}},
            "keep_rank (2) cannot be below size (5)",
        ),
        ({"source": {"type": "static", "symbols": ["A"]}, "refresh": "soon"}, "'soon' is not a duration"),
        ({"source": {"type": "static", "symbols": ["A"]}, "typo": 1}, "typo: Extra inputs are not permitted"),
    ],
)
def test_bad_files_name_the_key(data: dict[str, object], expected: str) -> None:
    with pytest.raises(UniverseConfigError) as err:
        parse_universe(data, origin="u.yaml")
    assert str(err.value).startswith("u.yaml: ") and expected in str(err.value)


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(UniverseConfigError, match="cannot read it"):
        load_universe(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: [unclosed\n")
    with pytest.raises(UniverseConfigError, match="not valid YAML"):
        load_universe(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(UniverseConfigError, match="top level must be a mapping"):
        load_universe(scalar)


def test_durations() -> None:
    assert parse_duration_ms("30m") == 1_800_000
    assert parse_duration_ms("1.5h") == 5_400_000
    assert parse_duration_ms("2w") == 2 * 604_800_000
    assert parse_duration_ms(60) == 3_600_000  # plain numbers are minutes
    for bad in ("", "5s", "h", True, -1):
        with pytest.raises(ValueError):
            parse_duration_ms(bad)
