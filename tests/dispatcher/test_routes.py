"""Route configuration: validation errors are clear, patterns expand to concrete topics, transforms load."""

from __future__ import annotations

from pathlib import Path

import pytest

from roottrading import messages as m
from roottrading.services.dispatcher.routes import (
    RoutesError,
    RouteSpec,
    expand,
    load_routes,
    load_transform,
    render_topic,
    topic_matches,
)

GOOD = """
targets:
  mirror: {url: "redis://127.0.0.1:6379/0", prefix: "rt2"}
routes:
  - {name: candles, match: "market.candles.*", target: mirror}
"""


def test_yaml_file_is_loaded(tmp_path: Path) -> None:
    p = tmp_path / "routes.yaml"
    p.write_text(GOOD)
    cfg = load_routes(p)
    assert cfg.targets["mirror"].prefix == "rt2" and cfg.routes[0].target_topic == "{topic}"
    assert load_routes(str(p)) == cfg == load_routes(GOOD)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("routes: [{name: a, match: x, target: nowhere}]", "unknown target 'nowhere'"),
        ("targets: {t: {url: 'http://x'}}", "use memory://, redis://"),
        (
            "targets: {t: {url: 'memory://'}}\nroutes: [{name: a, match: signals, target: t, transform: 'nope'}]",
            "transform 'nope'",
        ),
        (
            "targets: {t: {url: 'memory://'}}\nroutes: [{name: a, match: signals, target: t, transform: 'no.such:f'}]",
            "cannot import 'no.such'",
        ),
        (
            "targets: {t: {url: 'memory://'}}\nroutes: [{name: a, match: s, target: t}, {name: a, match: s, target: t}]",
            "route names must be unique",
        ),
        ("targets: {t: {url: 'memory://'}}\nroutes: [{name: 'a b', match: s, target: t}]", "routes.0.name"),
        ("routes: [1, 2", "invalid YAML"),
        ("- just a list", "expected a mapping"),
        ("targets: {}\nsurprise: 1", "surprise: Extra inputs are not permitted"),
    ],
)
def test_bad_routes_say_what_is_wrong(text: str, needle: str) -> None:
    with pytest.raises(RoutesError, match=None) as err:
        load_routes(text)
    assert needle in str(err.value), str(err.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RoutesError, match="cannot read dispatcher routes"):
        load_routes(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("pattern", "topic", "ok"),
    [
        ("market.candles.*", "market.candles.BTCUSDT", True),
        ("market.candles.*", "market.candles", False),
        ("market.*", "market.candles.BTCUSDT", False),
        ("market.>", "market.candles.BTCUSDT", True),
        ("market.>", "market", False),
        ("signals", "signals", True),
        ("market.candles.BTC*", "market.candles.BTCUSDT", True),  # fnmatch style
        ("market.candles.BTC*", "market.candles.ETHUSDT", False),
        ("logs.?nfo", "logs.info", True),
    ],
)
def test_topic_patterns(pattern: str, topic: str, ok: bool) -> None:
    assert topic_matches(pattern, topic) is ok


def test_candle_pattern_expands_with_the_configured_symbols() -> None:
    spec = RouteSpec(name="c", match="market.candles.*", target="t")
    assert expand(spec, ["BTCUSDT", "ETHUSDT"], []) == ["market.candles.BTCUSDT", "market.candles.ETHUSDT"]
    logs = RouteSpec(name="l", match="logs.>", target="t")
    assert expand(logs, [], []) == [m.logs_topic(lv) for lv in m.LOG_LEVELS]
    extra = RouteSpec(name="x", match="test.*", target="t", topics=["test.a", "test.b"])
    assert expand(extra, [], ["test.c"]) == ["test.c", "test.a", "test.b"]
    with pytest.raises(RoutesError, match="matches no known topic"):
        expand(RouteSpec(name="n", match="test.*", target="t"), [], [])
    with pytest.raises(RoutesError, match="unknown topic 'nope'"):
        expand(RouteSpec(name="n", match="nope", target="t"), [], [])


def test_transforms_builtin_and_dotted() -> None:
    msg = m.Message(id="i", topic="test.a", key="K", ts=1, payload=m.Ping(seq=3))
    assert load_transform(None)(msg) is msg
    renamed = load_transform("rename:mirror.{tail}")(msg)
    assert renamed is not None and renamed.topic == "mirror.a" and renamed.id == "i"
    fn = load_transform("tests.dispatcher.transforms:tag_odd_drop_seven")
    out = fn(msg)
    assert out is not None and out.payload.note == "odd"
    with pytest.raises(RoutesError, match="not callable"):
        load_transform("tests.dispatcher.transforms:NOT_CALLABLE")
    with pytest.raises(RoutesError, match="has no 'absent'"):
        load_transform("tests.dispatcher.transforms:absent")
    assert render_topic("{topic}.{key}", msg) == "test.a.K"
    with pytest.raises(RoutesError, match=r"use \{topic\}"):
        render_topic("{nope}", msg)
