"""Which pairs to trade: a YAML-configured chain (source, filters, scoring with hysteresis, forced pairs)
evaluated at a time T from history up to T only. docs/universe.md explains the file and the semantics."""

from roottrading.universe.config import (
    UniverseConfig,
    UniverseConfigError,
    load_universe,
    parse_universe,
    static_universe,
)
from roottrading.universe.select import PairReport, Selection, UniverseState, select
from roottrading.universe.stats import Book, MarketStats, compute_stats
from roottrading.universe.timeline import members_at, next_refresh, stats_at, universe_timeline

__all__ = [
    "Book",
    "MarketStats",
    "PairReport",
    "Selection",
    "UniverseConfig",
    "UniverseConfigError",
    "UniverseState",
    "compute_stats",
    "load_universe",
    "members_at",
    "next_refresh",
    "parse_universe",
    "select",
    "static_universe",
    "stats_at",
    "universe_timeline",
]
