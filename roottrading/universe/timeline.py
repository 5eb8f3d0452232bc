"""Point-in-time universes over a period: what a backtest needs (and what the live service does per refresh).

Refreshes fall on multiples of `refresh_ms` in market time (UTC epoch ms), so a live platform and a backtest
over the same dates refresh at the same instants and agree on the universe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from roottrading.domain import Candle
from roottrading.exchange.filters import SymbolRules
from roottrading.universe.config import UniverseConfig
from roottrading.universe.select import Selection, UniverseState, select
from roottrading.universe.stats import Book, MarketStats, compute_stats


def next_refresh(at: int, refresh_ms: int) -> int:
    """The first refresh instant strictly after `at`."""
    return (at // refresh_ms + 1) * refresh_ms


def stats_at(
    candles: Mapping[str, Sequence[Candle]],
    at: int,
    lookback_ms: int,
    *,
    rules: Mapping[str, SymbolRules] | None = None,
    books: Mapping[str, Book] | None = None,
) -> dict[str, MarketStats]:
    """Statistics of every symbol that has a candle closed before `at` (later candles are ignored)."""
    out: dict[str, MarketStats] = {}
    for sym, series in candles.items():
        st = compute_stats(
            sym,
            series,
            at,
            lookback_ms,
            rules=(rules or {}).get(sym),
            book=(books or {}).get(sym),
        )
        if st is not None:
            out[sym] = st
    return out


def universe_timeline(
    cfg: UniverseConfig,
    candles: Mapping[str, Sequence[Candle]],
    start: int,
    end: int,
    *,
    rules: Mapping[str, SymbolRules] | None = None,
) -> list[Selection]:
    """The universe at `start` and at every refresh instant up to `end`, each from history before it only."""
    state = UniverseState()
    out: list[Selection] = []
    at = start
    while at <= end:
        sel = select(cfg, stats_at(candles, at, cfg.lookback_ms, rules=rules), state, at)
        out.append(sel)
        state = sel.state
        at = next_refresh(at, cfg.refresh_ms)
    return out


def members_at(timeline: Sequence[Selection], time_ms: int) -> tuple[str, ...]:
    """The universe in force at `time_ms` (the last refresh at or before it; empty before the first)."""
    current: tuple[str, ...] = ()
    for sel in timeline:
        if sel.at > time_ms:
            break
        current = sel.members
    return current
