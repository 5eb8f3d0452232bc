"""One check per filter type: `why_out(filter, stats)` is None when the pair passes, else the reason.

Kept apart from the selection so that each rule reads as one small function, and the reason a person sees
in `GET /api/universe` is written next to the rule that produced it.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from fnmatch import fnmatchcase

from roottrading.universe.config import (
    AgeFilter,
    Filter,
    NotionalFilter,
    PatternFilter,
    PriceFilter,
    SpreadFilter,
    VolatilityFilter,
)
from roottrading.universe.stats import MarketStats


def why_out(f: Filter, s: MarketStats) -> str | None:
    """The reason `s` fails filter `f`, or None when it passes."""
    if isinstance(f, AgeFilter):
        return None if s.age_days >= f.min_days else f"listed {s.age_days:.1f} days < {f.min_days:g}"
    if isinstance(f, PriceFilter):
        if f.min is not None and s.last_price < f.min:
            return f"price {s.last_price:g} < {f.min:g}"
        if f.max is not None and s.last_price > f.max:
            return f"price {s.last_price:g} > {f.max:g}"
        return None
    if isinstance(f, SpreadFilter):
        if s.spread_pct is None:
            return None if f.unknown == "pass" else "spread unknown"
        return None if s.spread_pct <= f.max_pct else f"spread {s.spread_pct:.3f}% > {f.max_pct:g}%"
    if isinstance(f, VolatilityFilter):
        if f.min is not None and s.volatility < f.min:
            return f"volatility {s.volatility:.4f} < {f.min:g}"
        if f.max is not None and s.volatility > f.max:
            return f"volatility {s.volatility:.4f} > {f.max:g}"
        return None
    if isinstance(f, NotionalFilter):
        return _notional(f, s)
    if isinstance(f, PatternFilter):
        return _patterns(f, s.symbol)
    raise TypeError(f"unknown filter {type(f).__name__}")  # a new filter type without its check


def _notional(f: NotionalFilter, s: MarketStats) -> str | None:
    stake = Decimal(str(f.stake))
    if s.min_notional is not None and s.min_notional > stake:
        return f"min notional {s.min_notional} > stake {stake}"
    if s.last_price <= 0:
        return "no price"
    price = Decimal(str(s.last_price))
    qty = stake / price
    if s.step_size is not None and s.step_size > 0:
        qty = (qty / s.step_size).to_integral_value(rounding=ROUND_DOWN) * s.step_size
    if s.min_qty is not None and qty < s.min_qty:
        return f"stake {stake} buys {qty:f} < min qty {s.min_qty}"
    lost = (stake - qty * price) / stake * 100
    if lost > Decimal(str(f.max_rounding_pct)):
        return f"lot step loses {lost:.2f}% of the stake > {f.max_rounding_pct:g}%"
    return None


def _patterns(f: PatternFilter, symbol: str) -> str | None:
    for pattern in f.blacklist:
        if fnmatchcase(symbol, pattern):
            return f"blacklisted ({pattern})"
    if f.whitelist and not any(fnmatchcase(symbol, p) for p in f.whitelist):
        return "not whitelisted"
    return None
