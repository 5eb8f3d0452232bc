"""Portfolio REST routes (mounted under /api/portfolio/ or at / on the service's own port)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Body, HTTPException, Query

from roottrading import messages as m
from roottrading.capital.ledger import fmt, validate_allocation
from roottrading.capital.performance import (
    PERIODS,
    load_pnls,
    performance,
    period_start,
    start_equity,
)
from roottrading.capital.pnl import day_of
from roottrading.domain import Pocket
from roottrading.runtime.errors import error_responses
from roottrading.runtime.leader import NotLeader
from roottrading.runtime.leader_http import standby_route_class
from roottrading.runtime.params import epoch_ms
from roottrading.runtime.params import offset as offset_query
from roottrading.store import CycleRepo
from roottrading.store.repos_capital import TradeReadRepo, as_json

if TYPE_CHECKING:
    from roottrading.services.portfolio.service import PortfolioService

ZERO = Decimal(0)


def pocket_json(p: Pocket) -> dict[str, Any]:
    return {
        "pocket_type": p.pocket_type,
        "allocation_percent": fmt(p.allocation_percent),
        "current_value": fmt(p.current_value),
        "used_value": fmt(p.used_value),
        "available_value": fmt(p.available_value),
    }


def build_router(svc: PortfolioService) -> APIRouter:
    r = APIRouter(route_class=standby_route_class())  # a standby answers writes with 503 naming the leader
    db = svc.ctx.db

    async def pnls(since: int | None = None) -> list[Any]:
        return await load_pnls(db, quote_asset=svc.quote, marks=svc.prices, since=since)

    @r.get("/summary")
    async def summary() -> dict[str, Any]:
        """Total value, PnL today / total (realised + unrealised), pockets and the last reconciliation."""
        now = svc.ctx.clock.now_ms()
        total = await svc.revalue()
        every = await pnls()
        realised = sum((p.realised for p in every), ZERO)
        unreal = sum((p.unrealised for p in every), ZERO)
        today = sum((p.realised for p in every if p.closed_at is not None and p.closed_at >= day_of(now)), ZERO)
        return {
            "total_value": fmt(total),
            "quote_asset": svc.quote,
            "pnl_today": fmt(today),
            "pnl_total": fmt(realised + unreal),
            "realised_pnl": fmt(realised),
            "unrealised_pnl": fmt(unreal),
            "open_cycles": sum(1 for p in every if p.closed_at is None),
            "closed_cycles": sum(1 for p in every if p.closed_at is not None),
            "balances_source": "exchange" if svc.exchange_synced else "fills",
            "pockets": [pocket_json(p) for p in await svc.ledger.pockets()],
            "reconciliation": svc.reconciler.last,
            "time": now,
        }

    @r.get("/balances")
    async def balances() -> list[dict[str, Any]]:
        await svc.revalue()
        return [
            {
                "asset": b.asset,
                "free": fmt(b.free),
                "locked": fmt(b.locked),
                "total": fmt(b.total),
                "value_quote": fmt(b.value_quote),
            }
            for b in await svc.balances.all()
        ]

    @r.get("/pockets")
    async def pockets() -> list[dict[str, Any]]:
        return [pocket_json(p) for p in await svc.ledger.pockets()]

    @r.put("/pockets/sync")
    async def sync() -> dict[str, Any]:
        """Revalue the balances, reallocate the pockets to the total value and reconcile now."""
        await svc.revalue_and_reallocate(force=True)
        report = await svc.reconcile()
        return {"pockets": [pocket_json(p) for p in await svc.ledger.pockets()], "reconciliation": report}

    @r.put("/pockets/allocation", responses=error_responses(422))
    async def allocation(
        body: dict[str, Any] = Body(..., examples=[{"active": 60, "buffer": 30, "safety": 10}]),
    ) -> list[dict[str, Any]]:
        """Percentages per pocket (`{"active": 60, ...}` or `{"allocation": {...}}`): no negatives, sum 100."""
        if not svc.lead.is_leader():
            raise NotLeader(svc.name, await svc.lead.leader())
        config = body.get("allocation", body) if isinstance(body.get("allocation"), dict) else body
        try:
            await svc.ledger.set_allocation(validate_allocation(config))
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return [pocket_json(p) for p in await svc.ledger.pockets()]

    @r.get("/trades")
    async def trades(
        symbol: str | None = None,
        strategy: str | None = None,
        since: int | None = epoch_ms("epoch ms: cycles created at or after"),
        status: str | None = None,
        limit: int = Query(50, ge=1, le=500),
        offset: int = offset_query(),
    ) -> dict[str, Any]:
        """Trade cycles newest first (filters + pagination), each with its fills."""
        page, total = await CycleRepo(db).query(
            status=status.split(",") if status else None,
            symbol=symbol,
            strategy=strategy,
            since=since,
            limit=limit,
            offset=offset,
        )
        fills = await TradeReadRepo(db).fills_by_cycle(page)
        items = []
        for c in page:
            d = m.to_builtins(c)
            d["fills"] = [as_json(f) for f in sorted(fills.get(c.id, []), key=lambda f: f["time"])]
            items.append(d)
        return {"total": total, "limit": limit, "offset": offset, "items": items}

    @r.get("/performance/{period}", responses=error_responses(404))
    async def perf(period: str) -> dict[str, Any]:
        """Metrics over day | week | month | year | all (rolling windows) with the equity curve."""
        if period not in PERIODS:
            raise HTTPException(404, f"unknown period {period!r}; use one of {', '.join(PERIODS)}")
        now = svc.ctx.clock.now_ms()
        every = await pnls()
        start = start_equity(await svc.revalue(), every, svc.start_capital)
        return performance(every, start=start, since=period_start(period, now), now=now, period=period)

    return r
