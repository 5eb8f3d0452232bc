"""Coordinator service (reference port 5003), first version: turns each signal into an order request of a
fixed quote size. Sizing from equity and risk, filters, risk checks and pocket reservations come next."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Query

from roottrading import ids
from roottrading import messages as m
from roottrading.domain import OrderRequest, OrderType, Signal
from roottrading.runtime.service import Consumes, HealthStatus, Service
from roottrading.store import DecisionRepo

DEFAULT_QUOTE_SIZE = Decimal("100")


class CoordinatorService(Service):
    name = "coordinator"
    description = "Filters and sizes signals into order requests."

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.decisions = DecisionRepo(ctx.db)
        self.requests_sent = 0

    def consumes(self) -> list[Consumes]:
        return [Consumes(m.SIGNALS, self.on_signal)]

    async def on_signal(self, msg: m.Message) -> None:
        s: Signal = msg.payload
        req_id = ids.request_id_for_signal(s.id)
        req = OrderRequest(id=req_id, time=s.time, symbol=s.symbol, side=s.side, type=OrderType.MARKET,
                           quote_quantity=DEFAULT_QUOTE_SIZE, strategy=s.strategy, signal_id=s.id)
        await self.decisions.add(signal_id=s.id, time=self.ctx.clock.now_ms(), symbol=s.symbol, strategy=s.strategy,
                                 decision="accepted", reason=f"fixed size {DEFAULT_QUOTE_SIZE} quote",
                                 details={"request_id": req_id})
        await self.ctx.publish(m.ORDER_REQUESTS, req, key=s.symbol, msg_id=req_id)
        self.requests_sent += 1

    def router(self) -> APIRouter:
        r = APIRouter()

        @r.get("/decisions")
        async def decisions(signal_id: str | None = None, limit: int = Query(100, ge=1, le=1000)
                            ) -> list[dict[str, Any]]:
            return await self.decisions.query(signal_id=signal_id, limit=limit)

        @r.get("/health")
        async def health() -> dict[str, Any]:
            return {"status": "ok", "requests": self.requests_sent}

        return r

    async def health(self) -> HealthStatus:
        return HealthStatus(details={"requests": self.requests_sent})
