"""The services' tuning: periods of their jobs, time windows, start values, file paths.

Why typed settings and not a dict on the context: these numbers used to travel in `ctx.extras`, an untyped
bag whose ~30 keys were documented nowhere, read with a default at each call site (so a typo silently meant
"the default") and not settable by an operator at all. As fields of `Settings` (which inherits this class)
each one has one default, a range check at start-up, a description, an environment variable (its upper-case
name) and a line in `.env.example` (tests/runtime/test_no_untyped_bag.py checks that every one is there).
Tests and the backtester pass them as ordinary settings: `Settings(trader_reconcile_s=3600)` or
`settings.model_copy(update={...})`.

Kept apart from config.py only so that no module grows past ~500 lines; `Settings` is the one object to use.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings

# What a demo account starts with when nothing else is known (also capital.performance's fallback).
DEMO_START_CAPITAL = Decimal(10_000)
# The risk manager's equity before the first portfolio update.
DEFAULT_EQUITY = Decimal(10_000)


class TuningSettings(BaseSettings):
    """The services' tuning; a base class of `config.Settings` (which sets the sources and model config)."""

    # --- trader ---
    trader_resend_window_ms: int = Field(
        60_000,
        ge=0,
        description="an entry intent the exchange never received is re-sent at reconciliation only while younger"
        " than this (older: rejected; an exit is always re-sent)",
    )
    trader_reconcile_s: float = Field(30.0, gt=0, description="seconds between reconciliations with the exchange")
    trader_balances_s: float = Field(30.0, gt=0, description="seconds between balance syncs with the exchange")
    trader_balances_min_s: float = Field(
        1.0, ge=0, description="min seconds between two balance reads from a remote exchange (request weight)"
    )
    trader_paper_account_stored: bool = Field(
        True,
        description="demo: store the simulated account with the cycles so a restart continues it (false: a fresh"
        " simulated account at each start)",
    )
    trader_exchange_stops: bool = Field(
        False,
        description="keep every cycle's stop (stop-loss, trailing, custom) as a STOP_LOSS_LIMIT order on the"
        " exchange, so it holds while the platform is down (a strategy's exchange_stop attribute overrides this)",
    )
    trader_exchange_stop_move_s: float = Field(
        10.0, ge=0, description="min seconds between two moves (cancel + replace) of one cycle's exchange stop"
    )
    trader_exchange_stop_limit_pct: Decimal = Field(
        Decimal("0.5"),
        ge=0,
        lt=100,
        description="an exchange stop's limit price this many percent below its stop price (room to fill in a"
        " fast fall)",
    )

    # --- risk manager ---
    risk_rules_path: Path | None = Field(
        None,
        # ROOTTRADING_RULES is the name docs/risk.md has always used; RISK_RULES_PATH follows the field name.
        validation_alias=AliasChoices("risk_rules_path", "roottrading_rules"),
        description="rules.yaml of the risk manager (unset: DATA_DIR/rules.yaml if present, else the packaged one)",
    )
    risk_reload_s: float = Field(2.0, gt=0, description="seconds between checks of the rules file for changes")
    risk_locks_s: float = Field(1.0, gt=0, description="seconds between checks for expired pauses and locks")
    risk_initial_equity: Decimal = Field(
        DEFAULT_EQUITY, gt=0, description="equity the risk rules assume before the first portfolio update"
    )

    # --- portfolio ---
    portfolio_exchange_timeout_s: float = Field(
        10.0, gt=0, description="how long the start-up balance read from the exchange may take"
    )
    portfolio_start_capital: Decimal = Field(
        DEMO_START_CAPITAL, ge=0, description="demo: quote-asset balance of a new account with no stored balances"
    )
    portfolio_reallocate_s: float = Field(30.0, gt=0, description="seconds between revaluations of the pockets")
    portfolio_reconcile_s: float = Field(
        60.0, gt=0, description="seconds between reconciliations of reservations with cycles and balances"
    )
    portfolio_release_grace_ms: int = Field(
        30_000, ge=0, description="a reservation whose cycle closed is released after this grace"
    )
    portfolio_stale_reservation_ms: int = Field(
        900_000, ge=0, description="a reservation with no cycle is released after this long"
    )

    # --- pnl, replay, scheduler ---
    pnl_snapshot_s: float = Field(300.0, gt=0, description="seconds between stored performance snapshots")
    replay_speed: float = Field(20.0, ge=0, description="replay service: candles per second (0: as fast as possible)")
    scheduler_check_remote: bool = Field(
        False, description="the scheduler also probes GET /health of services not in its process (split mode)"
    )


TUNING_FIELDS: tuple[str, ...] = tuple(TuningSettings.model_fields)
