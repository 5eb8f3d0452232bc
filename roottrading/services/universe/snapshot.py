"""What the universe service reads from the exchange at a refresh: candidates, rules, candles, books.

Why REST and not the store: a volume-ranked universe ranks every symbol of the exchange, most of which the
platform does not stream. The statistics are then computed by the same pure function a backtest uses
(`roottrading.universe.stats_at`), at the refresh instant, from candles closed before it.
Requests: exchangeInfo (1), bookTicker for all symbols (1, only with a spread filter), per candidate one
klines page over the lookback, and once per symbol its first candle (only with an age filter; cached: a
listing date does not change). The market client keeps to the exchange's request weight.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from roottrading.domain import Candle, interval_ms
from roottrading.exchange.binance.rest_market import BinanceMarketRest, RestMarketError
from roottrading.exchange.filters import SymbolRules
from roottrading.universe import Book, MarketStats, UniverseConfig, compute_stats
from roottrading.universe.config import AgeFilter, SpreadFilter, StaticSource, VolumeSource

MAX_KLINES = 1000


@dataclass
class MarketSnapshot:
    """Fetches and caches; `stats(at)` returns statistics of every candidate at `at`."""

    rest: BinanceMarketRest
    cfg: UniverseConfig
    interval: str
    listed_since: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def _candidates(self, rules: dict[str, SymbolRules]) -> list[str]:
        src = self.cfg.source
        if isinstance(src, StaticSource):
            wanted = list(dict.fromkeys([*src.symbols, *self.cfg.forced]))
            return [s for s in wanted if s in rules]
        assert isinstance(src, VolumeSource)
        quoted = [s for s, r in rules.items() if r.status == "TRADING" and r.quote_asset == src.quote]
        return list(dict.fromkeys([*quoted, *(s for s in self.cfg.forced if s in rules)]))

    async def _books(self, at: int) -> dict[str, Book]:
        if not any(isinstance(f, SpreadFilter) for f in self.cfg.filters):
            return {}
        rows: Any = await self.rest.get("/api/v3/ticker/bookTicker")
        out = {}
        for r in rows if isinstance(rows, list) else []:
            bid, ask = float(r.get("bidPrice") or 0), float(r.get("askPrice") or 0)
            if bid > 0 and ask > 0:
                out[str(r["symbol"])] = Book(bid=bid, ask=ask, time=at)
        return out

    async def _first_open(self, sym: str) -> int | None:
        if sym not in self.listed_since:
            params = {"symbol": sym, "interval": self.interval, "startTime": 0, "limit": 1}
            rows: Any = await self.rest.get("/api/v3/klines", params)
            if not rows:
                return None
            self.listed_since[sym] = int(rows[0][0])
        return self.listed_since[sym]

    async def _history(self, sym: str, at: int) -> list[Candle]:
        step = interval_ms(self.interval)
        limit = min(MAX_KLINES, self.cfg.lookback_ms // step + 1)
        got = await self.rest.klines(sym, self.interval, None, at - 1, limit=limit)
        return [c for c in got if c.closed]

    async def stats(self, at: int) -> dict[str, MarketStats]:
        """Statistics of every candidate at `at`. A symbol whose requests fail is left out (and its error
        kept in `errors`): it cannot be judged, so it is not selected at this refresh."""
        self.errors = []
        raw = await self.rest.exchange_info()
        rules = {s["symbol"]: SymbolRules.from_binance(s) for s in raw.get("symbols", [])}
        books = await self._books(at)
        need_age = any(isinstance(f, AgeFilter) for f in self.cfg.filters)
        out: dict[str, MarketStats] = {}
        for i, sym in enumerate(self._candidates(rules)):
            if i and not i % 16:
                await asyncio.sleep(0)
            try:
                candles = await self._history(sym, at)
                first = await self._first_open(sym) if need_age else None
            except (RestMarketError, OSError) as exc:
                self.errors.append(f"{sym}: {exc}")
                continue
            st = compute_stats(
                sym, candles, at, self.cfg.lookback_ms, rules=rules[sym], book=books.get(sym), listed_since=first
            )
            if st is not None:
                out[sym] = st
        return out
