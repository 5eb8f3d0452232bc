"""Collaborators a host injects into its services instead of letting them build their own.

Why one small dataclass, held by the context as `ctx.wiring`: these are objects, not settings (an exchange, a
list of candles, an HTTP client, a config object), so they cannot come from the environment; the live
platform injects none of them and each service builds its own from the settings. Tests, the backtester,
benchmarks and the embedded demo replace some of them. They used to travel in `ctx.extras`, an untyped
dict whose keys were documented nowhere and read with `.get(key, default)` (a typo silently meant "not
given"); here each one has a type and a line saying who reads it. Grouped in one object rather than as
fields of `Context` so that `Host(..., wiring=Wiring(exchange=...))` passes them in one argument, and so the
context keeps to what every service uses (settings, bus, store, clock, peers).

Tuning numbers are not here: they are settings (config_tuning.py), set with `Settings(...)` or
`settings.model_copy(update=...)`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from roottrading.bus.base import MessageBus
    from roottrading.capital.ledger import PocketLedger
    from roottrading.domain import Candle
    from roottrading.exchange.base import Exchange
    from roottrading.exchange.sim import SimConfig
    from roottrading.services.coordinator.config import CoordinatorConfig
    from roottrading.services.dispatcher.routes import RoutesConfig
    from roottrading.services.gateway.service import GatewayOptions


@dataclass
class Wiring:
    """What a host gives its services; every field None means "build your own from the settings"."""

    # --- trader (and who reads the same rules: coordinator, market) ---
    exchange: Exchange | None = None
    """The exchange the trader trades on (a simulator, a timed wrapper...). Not closed by the trader: its
    owner closes it. The coordinator and the market service read its `exchange_info()` as their rules."""
    feed_exchange: bool | None = None
    """Whether the trader pushes its candles and ticks into `exchange` (an in-process simulator has no market
    of its own). None: when the exchange has `on_candle`. Belongs to the object given, hence not a setting."""
    sim_config: SimConfig | None = None
    """Demo: fees, slippage, latency of the simulated exchange the trader builds (None: SimConfig defaults
    with a bounded paper history)."""
    demo_prices: Mapping[str, Decimal | float | str] | None = None
    """Demo: symbol -> a typical price, to scale the tick and step sizes of derived symbol rules."""
    demo_balances: Mapping[str, Decimal | float | str] | None = None
    """Demo: asset -> amount the simulated account starts with (on top of 10 000 USDT, replacing an asset
    given here)."""

    # --- market data ---
    replay_candles: Sequence[Candle] | None = None
    """Replay service: the candles to publish (None: the bundled demo dataset)."""
    gateway: GatewayOptions | Mapping[str, Any] | None = None
    """Gateway: its tuning (warm-up, back-off, ...), as GatewayOptions or a dict of its fields."""

    # --- decisions ---
    coordinator: CoordinatorConfig | Mapping[str, Any] | None = None
    """Coordinator: a CoordinatorConfig used as is, or a dict of its fields applied over COORDINATOR_* of the
    environment (services/coordinator/config.py)."""
    pocket_ledger: PocketLedger | None = None
    """Coordinator: the ledger it reserves funds in (tests inject a failing one)."""
    analyzer_config: Mapping[str, Any] | None = None
    """Analyzer: extra EngineConfig fields, over those the settings give."""

    # --- capital, routing, monitoring ---
    portfolio_exchange: Exchange | None = None
    """Portfolio: where it reads the balances at start when none are stored (live: its own Binance client)."""
    dispatcher_routes: RoutesConfig | Mapping[str, Any] | str | Path | None = None
    """Dispatcher: its routes (a RoutesConfig, a dict, YAML text or a path), before DISPATCHER_ROUTES."""
    dispatcher_targets: Mapping[str, MessageBus] | None = None
    """Dispatcher: target name -> a bus object to use instead of connecting to the target's URL."""
    telegram_http: httpx.AsyncClient | None = None
    """Telegram bot: the HTTP client for the platform's own API (tests: an in-process ASGI client). Not
    closed by the bot when given."""
