"""Coordinator settings: environment variables COORDINATOR_* (e.g. COORDINATOR_RISK_PCT=0.5), overridden by
`ctx.wiring.coordinator` (a dict of fields, handy in tests and embedded use, or a CoordinatorConfig used as is). Validated by pydantic: a bad value
stops start-up with a message naming the field."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from roottrading.domain import SignalStrength


class CoordinatorConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COORDINATOR_", extra="ignore")

    # filters (entries only; exits are never filtered)
    max_signal_age_s: float = Field(
        300.0,
        ge=0,
        description="an entry signal older than this (market time, from its candle's close) is rejected as stale:"
        " a backlog after an outage must not trade old prices (0: no limit)",
    )
    min_strength: SignalStrength = Field(SignalStrength.MODERATE, description="weakest signal that may open")
    blocked_regimes: list[str] = Field(
        default_factory=list, description="Signal.regime values that never open, matched as prefixes (e.g. TREND_DOWN)"
    )
    cooldown_s: float = Field(60.0, ge=0, description="min seconds between entries per symbol+strategy")
    allow_multiple_cycles: bool = Field(False, description="allow several open cycles per symbol+strategy")
    pending_ttl_s: float = Field(
        120.0,
        gt=0,
        description="how long an accepted entry counts as open before the trader's cycle appears in the store",
    )
    # sizing
    risk_pct: Decimal = Field(Decimal(1), gt=0, le=100, description="% of equity lost if the stop is hit")
    stake_quote: Decimal | None = Field(
        None,
        gt=0,
        description="fixed quote amount per entry instead of risk sizing (pocket, max quantity/notional and the"
        " risk manager still cap it); unset: size from equity x risk_pct",
    )
    default_stop_pct: Decimal = Field(Decimal(2), gt=0, lt=100, description="stop distance when a signal has none")
    fee_buffer_pct: Decimal = Field(Decimal("0.1"), ge=0, lt=10, description="reserved on top of the notional")
    slippage_buffer_pct: Decimal = Field(
        Decimal("0.5"),
        ge=0,
        lt=10,
        description="reserved on top of the notional (and the fee buffer) for a market buy filling above the"
        " signal's price; the part the fill did not need returns to the pocket at the fill",
    )
    max_quantity: dict[str, Decimal] = Field(default_factory=dict, description="per symbol max base quantity")
    max_notional: dict[str, Decimal] = Field(default_factory=dict, description="per symbol max quote notional")
    pocket: str = Field("active", description="pocket funds are reserved in")
    pocket_view_s: float = Field(
        1.0,
        ge=0,
        description="sizing may use the ledger's view of the pockets this "
        "old (0: read the store every time); the reservation always checks the funds "
        "in its own transaction, and a refusal is sized again from the store",
    )
    initial_equity: Decimal = Field(Decimal(10_000), gt=0, description="equity before any portfolio update")
    default_step: Decimal = Field(Decimal("0.00001"), gt=0, description="step size when the exchange's is unknown")
    default_min_notional: Decimal = Field(Decimal(10), ge=0, description="min notional when the exchange's is unknown")
    rules_refresh_s: float = Field(3600.0, gt=0, description="seconds between reloads of the exchange's symbol rules")
    rules_retry_s: float = Field(60.0, gt=0, description="seconds between attempts while the rules cannot be loaded")
    # dependencies
    risk_url: str | None = Field(
        None,
        description="risk service base URL when not in this process (default http://127.0.0.1:<risk port>); several, comma-separated, for active/standby instances: tried in order, a standby answers 503",
    )
    risk_timeout_s: float = Field(2.0, gt=0)
    breaker_failures: int = Field(3, ge=1, description="consecutive failures that open a circuit")
    breaker_reset_s: float = Field(30.0, gt=0, description="seconds a circuit stays open before a probe")

    @field_validator("max_quantity", "max_notional")
    @classmethod
    def _upper(cls, v: dict[str, Decimal]) -> dict[str, Decimal]:
        return {k.upper(): x for k, x in v.items()}


def load_config(given: CoordinatorConfig | Mapping[str, Any] | None) -> CoordinatorConfig:
    """`given` as is when a CoordinatorConfig, else COORDINATOR_* of the environment with `given`'s fields over them."""
    if isinstance(given, CoordinatorConfig):
        return given
    return CoordinatorConfig(**dict(given or {}))
