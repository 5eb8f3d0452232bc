"""Route configuration of the dispatcher: a YAML file validated with pydantic, topic patterns, transforms.

```yaml
source: {url: null, prefix: null}         # null url: the host's own bus (ctx.bus)
targets:
  durable: {url: "nats://127.0.0.1:4222", prefix: "rt"}
  mirror:  {url: "redis://127.0.0.1:6379/0", prefix: "rt2", options: {partitions: 4}}
topics: ["test.extra"]                    # extra concrete topics that patterns may expand to
memory_max: 10000                         # entries kept in memory per route while spilling
forward_timeout_s: 2.0
routes:
  - name: candles
    match: "market.candles.*"             # NATS-style: '*' one token, '>' the rest; or fnmatch ('BTC*', '?')
    target: durable
    target_topic: "{topic}"               # template: {topic}, {tail} (last token), {key}
    transform: null                       # "module:func" (Message -> Message | None) or "rename:<template>"
```

Bus subscriptions need concrete topics, so a pattern is expanded against the topics the platform knows
(messages.py's fixed topics, `market.candles|ticks.<SYMBOL>` for every configured symbol, `logs.<level>`) plus
`topics:` and the route's own `topics:`. A pattern that expands to nothing is an error, not a silent no-op.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from roottrading import messages as m

Transform = Callable[[m.Message], "m.Message | None"]


class RoutesError(ValueError):
    """A routes file that cannot be used; the message says what to fix."""


class Endpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = None
    prefix: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str | None) -> str | None:
        if v is not None and v.split("://", 1)[0] not in ("memory", "redis", "rediss", "nats"):
            raise ValueError(f"{v!r}: use memory://, redis://host:port/db or nats://host:port")
        return v


class RouteSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    match: str = Field(min_length=1)
    target: str
    target_topic: str = "{topic}"
    transform: str | None = None
    topics: list[str] = Field(default_factory=list)
    group: str | None = None

    @field_validator("transform")
    @classmethod
    def _transform(cls, v: str | None) -> str | None:
        if v is not None:
            load_transform(v)  # fail at load time with the reason
        return v


class RoutesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: Endpoint = Field(default_factory=Endpoint)
    targets: dict[str, Endpoint] = Field(default_factory=dict)
    topics: list[str] = Field(default_factory=list)
    memory_max: int = Field(10_000, ge=1)
    forward_timeout_s: float = Field(2.0, gt=0)
    routes: list[RouteSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> RoutesConfig:
        names = [r.name for r in self.routes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"route names must be unique: {dupes}")
        for r in self.routes:
            if r.target not in self.targets:
                raise ValueError(f"route {r.name!r}: unknown target {r.target!r}; declared: {sorted(self.targets)}")
        return self


def load_routes(spec: Any) -> RoutesConfig:
    """Routes from a dict, a RoutesConfig, YAML text, or a path to a YAML file. Raises RoutesError."""
    if isinstance(spec, RoutesConfig):
        return spec
    where = "routes"
    if isinstance(spec, Path) or (isinstance(spec, str) and "\n" not in spec and spec.endswith((".yaml", ".yml"))):
        path = Path(spec)
        where = str(path)
        try:
            spec = path.read_text()
        except OSError as exc:
            raise RoutesError(f"cannot read dispatcher routes {path}: {exc.strerror}") from None
    if isinstance(spec, str):
        try:
            spec = yaml.safe_load(spec) or {}
        except yaml.YAMLError as exc:
            raise RoutesError(f"{where}: invalid YAML: {exc}") from None
    if not isinstance(spec, dict):
        raise RoutesError(f"{where}: expected a mapping with 'targets' and 'routes', got {type(spec).__name__}")
    try:
        return RoutesConfig.model_validate(spec)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()]
        raise RoutesError(f"{where}: " + "; ".join(lines)) from None


# --- patterns ------------------------------------------------------------------------------------------
def _is_fnmatch(pattern: str) -> bool:
    return any(c in pattern for c in "?[") or any("*" in t and t != "*" for t in pattern.split("."))


def topic_matches(pattern: str, topic: str) -> bool:
    """NATS-style ('*' = one token, '>' = one or more trailing tokens) unless the pattern is fnmatch-style."""
    if _is_fnmatch(pattern):
        return fnmatch.fnmatchcase(topic, pattern)
    pt, tt = pattern.split("."), topic.split(".")
    for i, p in enumerate(pt):
        if p == ">":
            return len(tt) > i
        if i >= len(tt) or (p != "*" and p != tt[i]):
            return False
    return len(pt) == len(tt)


def known_topics(symbols: list[str], extra: list[str] | None = None) -> list[str]:
    """Concrete topics the platform publishes, for pattern expansion."""
    out = [
        m.SIGNALS,
        m.ORDER_REQUESTS,
        m.ORDER_UPDATES,
        m.TRADE_EXECUTIONS,
        m.CYCLE_UPDATES,
        m.PORTFOLIO_BALANCES,
        m.RISK_EVENTS,
        m.SYSTEM_HEALTH,
    ]
    out += [m.candles_topic(s) for s in symbols] + [m.ticks_topic(s) for s in symbols]
    out += [m.logs_topic(level) for level in m.LOG_LEVELS]
    return list(dict.fromkeys(out + list(extra or [])))


def expand(route: RouteSpec, symbols: list[str], extra: list[str]) -> list[str]:
    """The concrete topics a route subscribes to; RoutesError when there are none."""
    if not any(c in route.match for c in "*>?["):
        topics = [route.match, *route.topics]
    else:
        topics = [t for t in known_topics(symbols, extra + route.topics) if topic_matches(route.match, t)]
    topics = list(dict.fromkeys(topics))
    for t in topics:
        try:
            m.schema_for(t)
        except m.MessageError as exc:
            raise RoutesError(f"route {route.name!r}: {exc}") from None
    if not topics:
        raise RoutesError(
            f"route {route.name!r}: pattern {route.match!r} matches no known topic; "
            f"list concrete topics under 'topics:' (symbols: {symbols})"
        )
    return topics


def render_topic(template: str, msg: m.Message) -> str:
    try:
        return template.format(topic=msg.topic, tail=msg.topic.rsplit(".", 1)[-1], key=msg.key or "")
    except (KeyError, IndexError, ValueError) as exc:
        raise RoutesError(f"target_topic {template!r}: {exc!r} (use {{topic}}, {{tail}}, {{key}})") from None


# --- transforms ----------------------------------------------------------------------------------------
def _identity(msg: m.Message) -> m.Message:
    return msg


def load_transform(spec: str | None) -> Transform:
    """'identity', 'rename:<template>' or 'package.module:function' (Message -> Message | None)."""
    if spec is None or spec == "identity":
        return _identity
    if spec.startswith("rename:"):
        template = spec.split(":", 1)[1]
        if not template:
            raise RoutesError("transform 'rename:' needs a topic template, e.g. 'rename:mirror.{topic}'")

        def rename(msg: m.Message) -> m.Message:
            return m.Message(
                id=msg.id,
                topic=render_topic(template, msg),
                key=msg.key,
                ts=msg.ts,
                payload=msg.payload,
                attempt=msg.attempt,
            )

        return rename
    module, sep, func = spec.partition(":")
    if not sep or not module or not func:
        raise RoutesError(f"transform {spec!r}: use 'identity', 'rename:<template>' or 'package.module:function'")
    try:
        fn = getattr(importlib.import_module(module), func)
    except ImportError as exc:
        raise RoutesError(f"transform {spec!r}: cannot import {module!r}: {exc}") from None
    except AttributeError:
        raise RoutesError(f"transform {spec!r}: module {module!r} has no {func!r}") from None
    if not callable(fn):
        raise RoutesError(f"transform {spec!r}: {func!r} is not callable")
    return fn
