"""Per-symbol market statistics at a time T, from candles closed by T only.

Why one function for live and backtests: a backtest over a period must see the universe as it would have
been at each refresh. `compute_stats` drops every candle whose close time is not before T, so handing it a
symbol's whole history (future included) gives exactly what it gives for the history up to T: no lookahead,
no survivorship (a symbol with no candle before T does not exist yet). tests/universe/test_stats.py checks it.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from roottrading.domain import Candle
from roottrading.exchange.filters import SymbolRules

DAY_MS = 86_400_000


def _close_time(c: Candle) -> int:
    return c.close_time


def _open_time(c: Candle) -> int:
    return c.open_time


@dataclass(frozen=True, slots=True)
class Book:
    """Best bid and ask as last seen at or before T (None in backtests, which have candles only)."""

    bid: float
    ask: float
    time: int


@dataclass(frozen=True, slots=True)
class MarketStats:
    """What the universe chain reads about one symbol at time `at`."""

    symbol: str
    at: int
    listed_since: int  # open time of its first known candle
    last_price: float
    quote_volume: float  # over the lookback
    volatility: float  # daily: stdev of candle log returns * sqrt(candles per day)
    momentum: float  # close now / close at the start of the lookback - 1
    candles: int  # in the lookback window
    spread_pct: float | None = None
    min_notional: Decimal | None = None
    min_qty: Decimal | None = None
    step_size: Decimal | None = None
    quote_asset: str | None = None

    @property
    def age_days(self) -> float:
        return (self.at - self.listed_since) / DAY_MS


def compute_stats(
    symbol: str,
    candles: Sequence[Candle],
    at: int,
    lookback_ms: int,
    *,
    rules: SymbolRules | None = None,
    book: Book | None = None,
    listed_since: int | None = None,
) -> MarketStats | None:
    """Statistics of `symbol` at `at` from `candles` (one interval, ascending open time). Candles that close at
    or after `at` are ignored, as is a book newer than `at`. None when no candle has closed by `at`.
    `listed_since` overrides the first candle's open time when the caller knows better (e.g. the store's first
    row while only the lookback was loaded); it is ignored when later than `at`."""
    closes_by = bisect.bisect_left(candles, at, key=_close_time)
    if closes_by == 0:
        return None
    first = candles[0].open_time
    if listed_since is not None and listed_since <= at:
        first = min(listed_since, first)
    lo = bisect.bisect_left(candles, at - lookback_ms, 0, closes_by, key=_open_time)
    window = candles[min(lo, closes_by - 1) : closes_by]
    n = len(window)
    closes = np.fromiter((c.close for c in window), dtype=float, count=n)
    qvs = np.fromiter((c.quote_volume or c.volume * c.close for c in window), dtype=float, count=n)
    step_ms = max(1, window[0].close_time + 1 - window[0].open_time)
    vol = 0.0
    if n > 2 and closes.min() > 0:
        rets = np.diff(np.log(closes))
        vol = float(np.std(rets, ddof=1) * math.sqrt(DAY_MS / step_ms))
    momentum = float(closes[-1] / window[0].open - 1.0) if window[0].open > 0 else 0.0
    qv = float(qvs.sum())
    spread = None
    if book is not None and book.time <= at and book.bid > 0 and book.ask >= book.bid:
        spread = (book.ask - book.bid) / ((book.ask + book.bid) / 2) * 100.0
    return MarketStats(
        symbol=symbol,
        at=at,
        listed_since=first,
        last_price=float(closes[-1]),
        quote_volume=qv,
        volatility=vol,
        momentum=momentum,
        candles=n,
        spread_pct=spread,
        min_notional=rules.min_notional if rules is not None else None,
        min_qty=rules.min_qty if rules is not None else None,
        step_size=rules.step_size if rules is not None else None,
        quote_asset=rules.quote_asset if rules is not None else None,
    )
