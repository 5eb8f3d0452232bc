"""Entry filters. Pure functions returning the reason a signal may not open a position, or None."""

from __future__ import annotations

from roottrading.domain import Signal
from roottrading.services.coordinator.config import CoordinatorConfig


def age_filter(s: Signal, cfg: CoordinatorConfig, now_ms: int) -> str | None:
    """Why: after an outage (or a stalled consumer) the bus hands over a backlog of signals computed on prices
    that are long gone; opening on them trades yesterday's opinion at today's price. `s.time` is the close of
    the signal's candle, so the age is the pipeline's delay whatever the interval; `now_ms` is market time."""
    if cfg.max_signal_age_s <= 0:
        return None
    age_ms = now_ms - s.time
    if age_ms > cfg.max_signal_age_s * 1000:
        return f"stale signal: {age_ms / 1000:.0f}s old (> max_signal_age {cfg.max_signal_age_s:.0f}s)"
    return None


def strength_filter(s: Signal, cfg: CoordinatorConfig) -> str | None:
    if s.strength.rank < cfg.min_strength.rank:
        return f"strength {s.strength.value} below threshold {cfg.min_strength.value}"
    return None


def regime_filter(s: Signal, cfg: CoordinatorConfig) -> str | None:
    if s.regime and any(s.regime.upper().startswith(b.upper()) for b in cfg.blocked_regimes):
        return f"market regime {s.regime} blocks new entries"
    return None


def cooldown_filter(s: Signal, cfg: CoordinatorConfig, last_entry_ms: int | None) -> str | None:
    if last_entry_ms is None or cfg.cooldown_s <= 0:
        return None
    waited = (s.time - last_entry_ms) / 1000
    if 0 <= waited < cfg.cooldown_s:
        return f"cooldown: last entry on {s.symbol}/{s.strategy} {waited:.0f}s ago (< {cfg.cooldown_s:.0f}s)"
    return None


def open_cycle_filter(s: Signal, cfg: CoordinatorConfig, open_count: int) -> str | None:
    if open_count > 0 and not cfg.allow_multiple_cycles:
        return f"a cycle is already open for {s.symbol}/{s.strategy}"
    return None
