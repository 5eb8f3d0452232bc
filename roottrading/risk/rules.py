"""The schema of `rules.yaml`, validated with pydantic so that a typo is an error, never a silent default.

Every rule has `enabled` and an `action` chosen from the actions that make sense for it. Limits in percent
are percent of total equity (portfolio value in the quote asset). Unknown keys are refused (`extra=forbid`):
`max_drawdwon:` would otherwise be ignored and the platform would trade without a drawdown limit.
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Action = Literal["reject", "shrink", "pause", "disable_strategy", "kill_switch"]
ACTIONS: tuple[str, ...] = ("reject", "shrink", "pause", "disable_strategy", "kill_switch")

_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
_DURATION_PART = re.compile(r"(\d+)\s*(ms|s|m|h|d)")
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
COOLDOWN_HELP = "give a duration with a unit, e.g. 30m, 4h, 1d or 1h30m (null: locked until a manual resume)"


def parse_duration_ms(text: str) -> int:
    """'4h' -> 14_400_000; '1h30m', '90s', '2d' too. A bare number is refused: minutes or seconds? A unit
    makes the file say what it means. ValueError with a message fit for the rules file on anything else."""
    t = text.strip().lower().replace(" ", "")
    if t.startswith("-"):
        raise ValueError(f"cooldown {text!r} is negative; {COOLDOWN_HELP}")
    parts = _DURATION_PART.findall(t)
    if not t or "".join(n + u for n, u in parts) != t:
        raise ValueError(f"cooldown {text!r} is not a duration; {COOLDOWN_HELP}")
    ms = sum(int(n) * _UNIT_MS[u] for n, u in parts)
    if ms <= 0:
        raise ValueError(f"cooldown {text!r} must be longer than 0; {COOLDOWN_HELP}")
    return ms


class RulesError(ValueError):
    """rules.yaml cannot be used; the message names the file, the rule and the field."""


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    action: Action = "reject"
    ALLOWED: ClassVar[tuple[str, ...]] = ACTIONS

    @model_validator(mode="after")
    def _action_fits(self) -> _Rule:
        if self.action not in self.ALLOWED:
            raise ValueError(f"action {self.action!r} is not valid for this rule; use one of {', '.join(self.ALLOWED)}")
        return self


class _LockingRule(_Rule):
    """A rule whose breach locks something (pauses new entries or disables a strategy) for `cooldown` of MARKET
    time (the platform clock: simulated in demo and backtest), after which the lock is lifted on its own and
    the rule starts counting afresh. `cooldown: null` keeps the lock until a manual resume / enable. A
    kill_switch action is never lifted automatically, whatever the cooldown."""

    cooldown: str | None = "4h"

    @field_validator("cooldown", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> str | None:
        if v is None:
            return None
        if isinstance(v, int | float) and not isinstance(v, bool):
            raise ValueError(f"cooldown {v!r} {'is negative' if v < 0 else 'has no unit'}; {COOLDOWN_HELP}")
        if not isinstance(v, str):
            raise ValueError(f"cooldown {v!r} is not a duration; {COOLDOWN_HELP}")
        parse_duration_ms(v)
        return v.strip().lower().replace(" ", "")

    @property
    def cooldown_ms(self) -> int | None:
        return None if self.cooldown is None else parse_duration_ms(self.cooldown)


class ExposurePerAssetRule(_Rule):
    """Notional of open positions plus the new order in one symbol, as % of equity."""

    limit_pct: Decimal = Field(Decimal(30), gt=0, le=100)
    action: Action = "shrink"
    ALLOWED: ClassVar[tuple[str, ...]] = ("reject", "shrink")


class TotalExposureRule(_Rule):
    limit_pct: Decimal = Field(Decimal(80), gt=0, le=100)
    action: Action = "shrink"
    ALLOWED: ClassVar[tuple[str, ...]] = ("reject", "shrink")


class MaxOpenCyclesRule(_Rule):
    limit: int = Field(5, ge=0)
    ALLOWED: ClassVar[tuple[str, ...]] = ("reject",)


class PositionSizeRule(_Rule):
    """One order's notional: % of equity, optionally an absolute quote cap, optionally per symbol."""

    limit_pct: Decimal = Field(Decimal(20), gt=0, le=100)
    limit_quote: Decimal | None = Field(None, gt=0)
    per_symbol_quote: dict[str, Decimal] = Field(default_factory=dict)
    action: Action = "shrink"
    ALLOWED: ClassVar[tuple[str, ...]] = ("reject", "shrink")

    @field_validator("per_symbol_quote")
    @classmethod
    def _positive(cls, v: dict[str, Decimal]) -> dict[str, Decimal]:
        for sym, cap in v.items():
            if cap <= 0:
                raise ValueError(f"per_symbol_quote[{sym}] must be > 0")
        return {k.upper(): c for k, c in v.items()}


class DailyLossRule(_LockingRule):
    """Realised loss since 00:00 UTC (or since the last automatic resume), as % of the equity at the start of
    the day. Its pause always ends at 00:00 UTC, when a new day starts its own count; `cooldown` (default
    null: none) can end it sooner."""

    limit_pct: Decimal = Field(Decimal(3), gt=0, le=100)
    action: Action = "pause"
    cooldown: str | None = None
    ALLOWED: ClassVar[tuple[str, ...]] = ("reject", "pause", "kill_switch")


class DrawdownRule(_LockingRule):
    """Fall of equity from its peak (since start, or since the last automatic resume), in %."""

    limit_pct: Decimal = Field(Decimal(10), gt=0, le=100)
    action: Action = "pause"
    cooldown: str | None = "12h"
    ALLOWED: ClassVar[tuple[str, ...]] = ("reject", "pause", "kill_switch")


class VolatilityRule(_Rule):
    """ATR (Wilder, `atr_period` closed candles) as % of the close."""

    max_atr_pct: Decimal = Field(Decimal(5), gt=0)
    atr_period: int = Field(14, ge=2, le=500)
    shrink_factor: Decimal = Field(Decimal("0.5"), gt=0, le=1)
    ALLOWED: ClassVar[tuple[str, ...]] = ("reject", "shrink")


class OrdersPerMinuteRule(_Rule):
    limit: int = Field(10, ge=0)
    ALLOWED: ClassVar[tuple[str, ...]] = ("reject",)


class BlacklistRule(_Rule):
    symbols: list[str] = Field(default_factory=list)
    ALLOWED: ClassVar[tuple[str, ...]] = ("reject",)

    @field_validator("symbols")
    @classmethod
    def _upper(cls, v: list[str]) -> list[str]:
        return [s.strip().upper() for s in v]


class TradingHoursRule(_Rule):
    """New entries only between `start` and `end` (HH:MM, UTC; end may be 24:00; start > end wraps midnight)."""

    start: str = "00:00"
    end: str = "24:00"
    weekdays: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4, 5, 6])  # Monday = 0
    ALLOWED: ClassVar[tuple[str, ...]] = ("reject",)

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not _HHMM.match(v) or (v.startswith("24") and v != "24:00"):
            raise ValueError(f"{v!r} is not a time HH:MM between 00:00 and 24:00")
        return v

    @field_validator("weekdays")
    @classmethod
    def _days(cls, v: list[int]) -> list[int]:
        if any(d < 0 or d > 6 for d in v):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        return v

    def minutes(self) -> tuple[int, int]:
        def m(s: str) -> int:
            h, mm = s.split(":")
            return int(h) * 60 + int(mm)

        return m(self.start), m(self.end)


class StrategyLossStreakRule(_LockingRule):
    """A strategy that loses `max_consecutive_losses` cycles in a row is disabled for `cooldown` of market time
    (as freqtrade's StoplossGuard), then enabled again with its streak counted from zero."""

    max_consecutive_losses: int = Field(5, ge=1)
    action: Action = "disable_strategy"
    ALLOWED: ClassVar[tuple[str, ...]] = ("disable_strategy", "pause")


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    max_exposure_per_asset: ExposurePerAssetRule = ExposurePerAssetRule()
    max_total_exposure: TotalExposureRule = TotalExposureRule()
    max_open_cycles: MaxOpenCyclesRule = MaxOpenCyclesRule()
    max_position_size: PositionSizeRule = PositionSizeRule()
    daily_loss_limit: DailyLossRule = DailyLossRule()
    max_drawdown: DrawdownRule = DrawdownRule()
    volatility: VolatilityRule = VolatilityRule()
    max_orders_per_minute: OrdersPerMinuteRule = OrdersPerMinuteRule()
    symbol_blacklist: BlacklistRule = BlacklistRule()
    trading_hours: TradingHoursRule = TradingHoursRule()
    strategy_loss_streak: StrategyLossStreakRule = StrategyLossStreakRule()

    def cooldown_ms(self, rule: str) -> int | None:
        """How long a lock set by `rule` lasts in market time; None: until a manual resume."""
        r = getattr(self, rule, None)
        return r.cooldown_ms if isinstance(r, _LockingRule) else None


class RiskRules(BaseModel):
    """The whole file: `version: 1`, `rules: {...}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: Literal[1] = 1
    rules: RuleSet = RuleSet()


def default_rules_path() -> Path:
    """The packaged defaults (roottrading/rules.yaml)."""
    return Path(__file__).resolve().parents[1] / "rules.yaml"


def parse_rules(text: str, source: str = "rules.yaml") -> RiskRules:
    """Validate YAML text; RulesError with `source: rules.<rule>.<field>: message` lines on any problem."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{source}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RulesError(f"{source}: the top level must be a mapping with 'version' and 'rules'")
    try:
        return RiskRules.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{loc}: {msg}" if loc else msg)
        raise RulesError(f"{source}: invalid rules: " + "; ".join(lines)) from None


def load_rules(path: Path | str | None = None) -> RiskRules:
    """Read and validate a rules file (the packaged defaults when `path` is None)."""
    p = Path(path) if path is not None else default_rules_path()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"{p}: cannot read rules file: {exc.strerror or exc}") from None
    return parse_rules(text, str(p))
