"""PnL tracker service (reference port 5006).

The store is the truth: PnL is recomputed from trade_cycles + trade_fills (see roottrading.capital.pnl for
the fee convention) whenever a cycle update or a fill has arrived since the last computation, so a restart
or a redelivered message can never double count. Open cycles are marked at the last candle close.
A job stores the metrics in performance_stats (scopes all / strategy / symbol, period "all") every
PNL_SNAPSHOT_S seconds (default 300).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Query

from roottrading import messages as m
from roottrading.capital.ledger import fmt
from roottrading.capital.performance import (
    grouped_json,
    load_pnls,
    performance,
    portfolio_value,
    start_equity,
)
from roottrading.capital.pnl import CyclePnl, day_of
from roottrading.domain import Candle, Fill
from roottrading.domain.money import to_decimal
from roottrading.runtime.params import offset as offset_query
from roottrading.runtime.service import Consumes, HealthStatus, Job, Service
from roottrading.store import CandleRepo
from roottrading.store.repos_capital import PerformanceRepo

ZERO = Decimal(0)


class PnlService(Service):
    name = "pnl"
    description = "Realised and unrealised PnL per cycle, strategy, symbol and day; performance metrics."

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.quote = ctx.settings.quote_asset
        self.marks: dict[str, Decimal] = {}
        self.stats = PerformanceRepo(ctx.db)
        self.snapshot_s = ctx.settings.pnl_snapshot_s
        self._cache: list[CyclePnl] | None = None
        self._dirty = True
        self.updates_seen = 0
        self.snapshots = 0

    def consumes(self) -> list[Consumes]:
        subs = [Consumes(m.CYCLE_UPDATES, self.on_change), Consumes(m.TRADE_EXECUTIONS, self.on_fill)]
        subs += [Consumes(m.candles_topic(s), self.on_candle) for s in self.ctx.settings.symbols]
        return subs

    def jobs(self) -> list[Job]:
        return [Job("snapshot", self.snapshot_s, self.snapshot)]

    async def start(self) -> None:
        repo = CandleRepo(self.ctx.db)
        for sym in self.ctx.settings.symbols:
            last = await repo.range(sym, self.ctx.settings.interval, limit=1)
            if last:
                self.marks[sym] = to_decimal(last[-1].close)

    async def on_change(self, msg: m.Message) -> None:
        self._dirty = True
        self.updates_seen += 1

    async def on_fill(self, msg: m.Message) -> None:
        f: Fill = msg.payload
        self.marks.setdefault(f.symbol, f.price)
        self._dirty = True

    async def on_candle(self, msg: m.Message) -> None:
        c: Candle = msg.payload
        self.marks[c.symbol] = to_decimal(c.close)

    async def pnls(self) -> list[CyclePnl]:
        """Every cycle's PnL. Terminal cycles are cached until something changes; open ones are re-marked."""
        if self._cache is None or self._dirty:
            self._dirty = False
            self._cache = await load_pnls(self.ctx.db, quote_asset=self.quote, marks=self.marks)
            return self._cache
        if any(p.closed_at is None for p in self._cache):
            self._cache = await load_pnls(self.ctx.db, quote_asset=self.quote, marks=self.marks)
        return self._cache

    async def summary(self) -> dict[str, Any]:
        now = self.ctx.clock.now_ms()
        every = await self.pnls()
        start = start_equity(await portfolio_value(self.ctx.db), every)
        rep = performance(every, start=start, since=None, now=now)
        rep.pop("equity_curve")
        realised = sum((p.realised for p in every), ZERO)
        unreal = sum((p.unrealised for p in every), ZERO)
        today = sum((p.realised for p in every if p.closed_at is not None and p.closed_at >= day_of(now)), ZERO)
        rep.update(
            {
                "quote_asset": self.quote,
                "realised_pnl": fmt(realised),
                "unrealised_pnl": fmt(unreal),
                "total_pnl": fmt(realised + unreal),
                "pnl_today": fmt(today),
                "fees": fmt(sum((p.fees for p in every), ZERO)),
                "closed_cycles": sum(1 for p in every if p.closed_at is not None),
            }
        )
        return rep

    async def snapshot(self) -> None:
        """Store the current metrics (all, per strategy, per symbol) in performance_stats."""
        now = self.ctx.clock.now_ms()
        every = await self.pnls()
        rows = [{"time": now, "period": "all", "scope": "all", "scope_value": "", "metrics": await self.summary()}]
        for key in ("strategy", "symbol"):
            for g in grouped_json(every, key):
                rows.append({"time": now, "period": "all", "scope": key, "scope_value": str(g[key])[:80], "metrics": g})
        await self.stats.add_many(rows)
        self.snapshots += 1

    def router(self) -> APIRouter:
        r = APIRouter()

        @r.get("/summary")
        async def summary() -> dict[str, Any]:
            """Realised, unrealised and total PnL (fees included) with the trade and return metrics."""
            return await self.summary()

        @r.get("/strategies")
        async def strategies() -> list[dict[str, Any]]:
            return grouped_json(await self.pnls(), "strategy")

        @r.get("/symbols")
        async def symbols() -> list[dict[str, Any]]:
            return grouped_json(await self.pnls(), "symbol")

        @r.get("/daily")
        async def daily(days: int = Query(90, ge=1, le=3650)) -> list[dict[str, Any]]:
            """Realised PnL per UTC day of cycle close (newest last), for the last `days` days."""
            rows = grouped_json(await self.pnls(), "day")
            return rows[-days:]

        @r.get("/cycles")
        async def cycles(
            status: str | None = Query(None, description="open or closed"),
            strategy: str | None = None,
            symbol: str | None = None,
            limit: int = Query(100, ge=1, le=1000),
            offset: int = offset_query(),
        ) -> dict[str, Any]:
            """Per-cycle PnL, newest first."""
            items = [
                p
                for p in await self.pnls()
                if (strategy is None or p.strategy == strategy)
                and (symbol is None or p.symbol == symbol)
                and (status is None or (status == "open") == (p.closed_at is None))
            ]
            items.sort(key=lambda p: (p.closed_at or p.opened_at, p.cycle_id), reverse=True)
            return {
                "total": len(items),
                "limit": limit,
                "offset": offset,
                "items": [p.as_dict() for p in items[offset : offset + limit]],
            }

        return r

    async def health(self) -> HealthStatus:
        return HealthStatus(
            details={"marks": len(self.marks), "updates": self.updates_seen, "snapshots": self.snapshots}
        )
