"""The universe chain as configured in YAML, validated by pydantic.

Why a chain: one source proposes candidates (a static list, or every symbol of the exchange ranked by quote
volume), filters remove what cannot or should not be traded, an optional scoring step keeps the best `size`
pairs with hysteresis and a cooldown, and forced pairs are always in. Each step is one small model, so a
typo in the file is refused at load time with the path of the bad key (`filters.2.max_pct: ...`).

Durations are strings such as `30m`, `4h`, `7d` (minutes, hours, days, weeks), held as epoch milliseconds.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

_UNITS_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$")


class UniverseConfigError(ValueError):
    """A universe file that cannot be used; the message names the file and the bad key."""


def parse_duration_ms(value: Any) -> int:
    """`4h` -> 14_400_000. Plain numbers are minutes (a YAML author writing `refresh: 60` means an hour)."""
    if isinstance(value, bool):
        raise ValueError("a duration is a string like 30m, 4h or 7d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return int(value * 60_000)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return int(float(match.group(1)) * _UNITS_MS[match.group(2)])
    raise ValueError(f"{value!r} is not a duration; use a number and a unit m, h, d or w, e.g. 30m, 4h, 7d")


def _symbol_list(v: Any) -> Any:
    if isinstance(v, str):
        v = [s for s in (p.strip() for p in v.split(",")) if s]
    if isinstance(v, list):
        out = [str(s).upper() for s in v]
        for s in out:
            if not s.isalnum():
                raise ValueError(f"symbol {s!r} must be letters and digits like BTCUSDT")
        return out
    return v


Duration = Annotated[int, Field(ge=0)]


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StaticSource(_Step):
    """A fixed list of candidates (the default: SYMBOLS, so nothing changes for current users)."""

    type: Literal["static"] = "static"
    symbols: list[str]

    _split = field_validator("symbols", mode="before")(_symbol_list)

    @field_validator("symbols")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("a static source needs at least one symbol")
        return v


class VolumeSource(_Step):
    """Every symbol of the exchange in `quote` asset, the `top` ones by quote volume over the lookback.
    A member stays while it ranks within `keep_top` (hysteresis: defaults to `top`)."""

    type: Literal["volume"] = "volume"
    top: int = Field(gt=0)
    keep_top: int | None = Field(None, gt=0)
    quote: str = "USDT"

    @model_validator(mode="after")
    def _keep(self) -> VolumeSource:
        if self.keep_top is not None and self.keep_top < self.top:
            raise ValueError(f"keep_top ({self.keep_top}) cannot be below top ({self.top})")
        return self

    @property
    def keep(self) -> int:
        return self.keep_top or self.top


class AgeFilter(_Step):
    """Listed for at least `min_days` (its first known candle is that old)."""

    type: Literal["age"] = "age"
    min_days: float = Field(gt=0)


class PriceFilter(_Step):
    type: Literal["price"] = "price"
    min: float | None = Field(None, ge=0)
    max: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _range(self) -> PriceFilter:
        if self.min is None and self.max is None:
            raise ValueError("set min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class SpreadFilter(_Step):
    """Best ask over best bid at most `max_pct` percent. `unknown`: what to do without a book (backtests)."""

    type: Literal["spread"] = "spread"
    max_pct: float = Field(gt=0)
    unknown: Literal["pass", "fail"] = "pass"


class VolatilityFilter(_Step):
    """Daily volatility (standard deviation of candle log returns scaled to a day), as a fraction."""

    type: Literal["volatility"] = "volatility"
    min: float | None = Field(None, ge=0)
    max: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _range(self) -> VolatilityFilter:
        if self.min is None and self.max is None:
            raise ValueError("set min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class NotionalFilter(_Step):
    """A `stake` (quote amount per trade) must be a valid order: at least the exchange's minimum notional and
    minimum quantity, and rounding it down to the lot step may lose at most `max_rounding_pct` percent."""

    type: Literal["min_notional"] = "min_notional"
    stake: float = Field(gt=0)
    max_rounding_pct: float = Field(1.0, gt=0)


class PatternFilter(_Step):
    """Glob patterns (`*UP*`, `BTC*`): a pair matching a blacklist pattern is out; when a whitelist is given,
    a pair must match one of its patterns."""

    type: Literal["patterns"] = "patterns"
    blacklist: list[str] = Field(default_factory=list)
    whitelist: list[str] = Field(default_factory=list)

    @field_validator("blacklist", "whitelist", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return [str(p).upper() for p in v] if isinstance(v, list) else v


Filter = Annotated[
    AgeFilter | PriceFilter | SpreadFilter | VolatilityFilter | NotionalFilter | PatternFilter,
    Field(discriminator="type"),
]
Source = Annotated[StaticSource | VolumeSource, Field(discriminator="type")]


class Weights(_Step):
    volatility: float = Field(1.0, ge=0)
    momentum: float = Field(1.0, ge=0)
    volume: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _some(self) -> Weights:
        if self.volatility + self.momentum + self.volume <= 0:
            raise ValueError("at least one weight must be above 0")
        return self


class Scoring(_Step):
    """Keep the `size` best-scored pairs. A member stays while it ranks within `keep_rank` (hysteresis: it
    leaves only when clearly out); a pair that left may come back only after `cooldown`."""

    size: int = Field(gt=0)
    keep_rank: int | None = Field(None, gt=0)
    cooldown_ms: Duration = 0
    weights: Weights = Field(default_factory=Weights)

    @model_validator(mode="before")
    @classmethod
    def _durations(cls, data: Any) -> Any:
        if isinstance(data, dict) and "cooldown" in data:
            data = dict(data)
            data["cooldown_ms"] = parse_duration_ms(data.pop("cooldown"))
        return data

    @model_validator(mode="after")
    def _keep(self) -> Scoring:
        if self.keep_rank is not None and self.keep_rank < self.size:
            raise ValueError(f"keep_rank ({self.keep_rank}) cannot be below size ({self.size})")
        return self

    @property
    def keep(self) -> int:
        return self.keep_rank or self.size


class UniverseConfig(_Step):
    """The whole chain. `refresh_ms` is in market time (the platform clock), `lookback_ms` is the window the
    statistics (volume, volatility, momentum) are computed over."""

    source: Source
    filters: list[Filter] = Field(default_factory=list)
    scoring: Scoring | None = None
    forced: list[str] = Field(default_factory=list)
    refresh_ms: Duration = 3_600_000
    lookback_ms: Duration = 86_400_000

    _split = field_validator("forced", mode="before")(_symbol_list)

    @model_validator(mode="before")
    @classmethod
    def _durations(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for key in ("refresh", "lookback"):
                if key in data:
                    data[f"{key}_ms"] = parse_duration_ms(data.pop(key))
        return data

    @field_validator("refresh_ms", "lookback_ms")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v <= 0:
            raise ValueError("must be longer than 0")
        return v

    @property
    def is_static(self) -> bool:
        """A plain list with nothing that can change it: the platform behaves as with SYMBOLS."""
        return isinstance(self.source, StaticSource) and not self.filters and self.scoring is None


def static_universe(symbols: list[str]) -> UniverseConfig:
    """The default when UNIVERSE_CONFIG is unset: exactly SYMBOLS."""
    return UniverseConfig(source=StaticSource(symbols=list(symbols)))


def parse_universe(data: Any, *, origin: str = "universe") -> UniverseConfig:
    """Validate a mapping; errors name the key path, one per line."""
    if not isinstance(data, dict):
        raise UniverseConfigError(f"{origin}: the top level must be a mapping with at least `source`")
    try:
        return UniverseConfig.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"{loc}: {err['msg']}")
        raise UniverseConfigError(f"{origin}: " + "; ".join(lines)) from None
    except ValueError as exc:  # a duration refused inside a `before` validator
        raise UniverseConfigError(f"{origin}: {exc}") from None


def load_universe(path: str | Path) -> UniverseConfig:
    """Read and validate a universe YAML file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise UniverseConfigError(f"UNIVERSE_CONFIG {p}: cannot read it: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UniverseConfigError(f"UNIVERSE_CONFIG {p}: not valid YAML: {exc}") from None
    return parse_universe(data, origin=f"UNIVERSE_CONFIG {p}")
