"""Trader service (reference port 5002), first version: demo fills at the last close price.

Every state change is stored before it is announced. BUY requests open a cycle; SELL requests close the
open cycle of the same symbol and strategy (spot: no shorting). The matching engine, limit orders and
stop/take-profit management replace `_fill` in the execution issue.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, HTTPException, Query

from roottrading import ids
from roottrading import messages as m
from roottrading.domain import (
    Candle, CycleStatus, Fill, Order, OrderRequest, OrderStatus, OrderType, Side, TradeCycle,
)
from roottrading.domain.money import round_step, to_decimal
from roottrading.runtime.service import Consumes, HealthStatus, Service
from roottrading.store import CycleRepo, OrderRepo

FEE_RATE = Decimal("0.001")
QTY_STEP = Decimal("0.00001")


class TraderService(Service):
    name = "trader"
    description = "Executes order requests and manages trade cycles."

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.orders = OrderRepo(ctx.db, demo=ctx.settings.trading_mode != "live")
        self.cycles = CycleRepo(ctx.db)
        self.last_price: dict[str, Decimal] = {}
        self.paused = False
        self.filled = 0

    def consumes(self) -> list[Consumes]:
        subs = [Consumes(m.ORDER_REQUESTS, self.on_request)]
        subs += [Consumes(m.candles_topic(s), self.on_candle) for s in self.ctx.settings.symbols]
        return subs

    async def on_candle(self, msg: m.Message) -> None:
        c: Candle = msg.payload
        self.last_price[c.symbol] = to_decimal(c.close)

    async def on_request(self, msg: m.Message) -> None:
        req: OrderRequest = msg.payload
        price = self.last_price.get(req.symbol) or (to_decimal(req.price) if req.price else None)
        if price is None:
            self.log.warning("no price yet, request dropped", request=req.id, symbol=req.symbol)
            return
        if req.side is Side.BUY:
            await self._open(req, price)
        else:
            await self._close_for(req, price)

    async def _open(self, req: OrderRequest, price: Decimal) -> None:
        cid = ids.cycle_id(req.id)
        if await self.cycles.get(cid) is not None:
            return  # redelivered request: already handled
        if self.paused:
            self.log.info("paused: entry skipped", request=req.id)
            return
        open_same = [c for c in await self.cycles.open_cycles() if c.symbol == req.symbol
                     and c.strategy == req.strategy]
        if open_same:
            return
        qty = req.quantity or round_step((req.quote_quantity or Decimal(0)) / price, QTY_STEP)
        if qty <= 0:
            return
        now = self.ctx.clock.now_ms()
        cycle = TradeCycle(id=cid, symbol=req.symbol, strategy=req.strategy, side=Side.BUY,
                           status=CycleStatus.INITIATING, created_at=now, updated_at=now, quantity=qty,
                           signal_id=req.signal_id, reservation_id=req.reservation_id)
        await self.cycles.save(cycle)
        order = await self._fill(req, ids.client_order_id(req.id, "entry"), Side.BUY, qty, price, cid)
        cycle.entry_order_id, cycle.entry_price = order.client_order_id, price
        cycle.fees = order.cumulative_quote * FEE_RATE
        cycle.status, cycle.updated_at = CycleStatus.ACTIVE, self.ctx.clock.now_ms()
        await self.cycles.save(cycle)
        await self.ctx.publish(m.CYCLE_UPDATES, cycle, key=cycle.symbol, msg_id=f"{cid}:ACTIVE")

    async def _close_for(self, req: OrderRequest, price: Decimal) -> None:
        for cycle in await self.cycles.open_cycles():
            if cycle.symbol == req.symbol and cycle.strategy == req.strategy and cycle.status is CycleStatus.ACTIVE:
                await self.close_cycle(cycle, price, reason="signal", request_id=req.id)

    async def close_cycle(self, cycle: TradeCycle, price: Decimal, *, reason: str, request_id: str) -> TradeCycle:
        order = await self._fill(None, ids.client_order_id(request_id, f"exit:{cycle.id}"), Side.SELL,
                                 cycle.quantity, price, cycle.id, symbol=cycle.symbol)
        entry_value = (cycle.entry_price or price) * cycle.quantity
        exit_value = order.cumulative_quote
        cycle.fees += exit_value * FEE_RATE
        cycle.exit_order_id, cycle.exit_price = order.client_order_id, price
        cycle.profit_loss = exit_value - entry_value - cycle.fees
        cycle.profit_loss_percent = ((cycle.profit_loss / entry_value * 100).quantize(Decimal("0.0001"))
                                     if entry_value else Decimal(0))
        cycle.status, cycle.close_reason, cycle.updated_at = CycleStatus.COMPLETED, reason, self.ctx.clock.now_ms()
        await self.cycles.save(cycle)
        await self.ctx.publish(m.CYCLE_UPDATES, cycle, key=cycle.symbol, msg_id=f"{cycle.id}:COMPLETED")
        return cycle

    async def _fill(self, req: OrderRequest | None, coid: str, side: Side, qty: Decimal, price: Decimal,
                    cycle_id: str, symbol: str | None = None) -> Order:
        """Demo execution: store the intent, then the fill at `price`, then announce."""
        now = self.ctx.clock.now_ms()
        sym = symbol or (req.symbol if req else "")
        order = Order(client_order_id=coid, symbol=sym, side=side, type=req.type if req else OrderType.MARKET,
                      quantity=qty, cycle_id=cycle_id, created_at=now, updated_at=now)
        await self.orders.save(order)  # intent stored before anything else happens
        quote = price * qty
        base, quote_asset = _split(sym, self.ctx.settings.quote_asset)
        fee_asset, fee = (base, qty * FEE_RATE) if side is Side.BUY else (quote_asset, quote * FEE_RATE)
        fill = Fill(trade_id=f"{coid}-1", order_id=coid, client_order_id=coid, symbol=sym, side=side, price=price,
                    quantity=qty, quote_quantity=quote, commission=fee, commission_asset=fee_asset, time=now)
        order.status, order.executed_quantity, order.cumulative_quote = OrderStatus.FILLED, qty, quote
        order.exchange_order_id, order.updated_at = coid, now
        await self.orders.add_fill(fill)
        await self.orders.save(order)
        await self.ctx.publish(m.TRADE_EXECUTIONS, fill, key=sym, msg_id=fill.trade_id)
        await self.ctx.publish(m.ORDER_UPDATES, m.OrderUpdate(event="TRADE", order=order, time=now), key=sym,
                               msg_id=f"{coid}:FILLED")
        self.filled += 1
        return order

    def router(self) -> APIRouter:
        r = APIRouter()

        @r.get("/health")
        async def health() -> dict[str, Any]:
            h = await self.health()
            return {"status": h.status, **h.details}

        @r.get("/orders")
        async def orders(symbol: str | None = None, status: str | None = None,
                         limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)) -> list[dict[str, Any]]:
            rows = await self.orders.query(symbol=symbol, status=status.split(",") if status else None,
                                           limit=limit, offset=offset)
            return [m.to_builtins(o) for o in rows]

        @r.get("/cycles")
        async def cycles(status: str | None = None, symbol: str | None = None, strategy: str | None = None,
                         limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0)) -> dict[str, Any]:
            page, total = await self.cycles.query(status=status.split(",") if status else None, symbol=symbol,
                                                  strategy=strategy, limit=limit, offset=offset)
            return {"total": total, "limit": limit, "offset": offset, "items": [m.to_builtins(c) for c in page]}

        @r.get("/trades")
        async def trades(symbol: str | None = None, order_id: str | None = None,
                         limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)) -> list[dict[str, Any]]:
            return [{k: str(v) if isinstance(v, Decimal) else v for k, v in row.items()}
                    for row in await self.orders.fills(symbol=symbol, order_id=order_id, limit=limit, offset=offset)]

        @r.post("/config/pause")
        async def pause() -> dict[str, Any]:
            self.paused = True
            self.log.info("trading paused: no new entries")
            return {"paused": True}

        @r.post("/config/resume")
        async def resume() -> dict[str, Any]:
            self.paused = False
            self.log.info("trading resumed")
            return {"paused": False}

        @r.post("/close/{cycle_id}")
        async def close(cycle_id: str) -> dict[str, Any]:
            cycle = await self.cycles.get(cycle_id)
            if cycle is None:
                raise HTTPException(404, f"cycle {cycle_id} not found")
            if cycle.status is not CycleStatus.ACTIVE:
                raise HTTPException(409, f"cycle {cycle_id} is {cycle.status.value}, not ACTIVE")
            price = self.last_price.get(cycle.symbol)
            if price is None:
                raise HTTPException(409, f"no market price for {cycle.symbol} yet")
            done = await self.close_cycle(cycle, price, reason="manual", request_id=f"manual-close:{cycle_id}")
            return m.to_builtins(done)

        return r

    async def health(self) -> HealthStatus:
        return HealthStatus(details={"filled": self.filled, "paused": self.paused})


def _split(symbol: str, quote: str) -> tuple[str, str]:
    for q in (quote, "USDT", "USDC", "BUSD", "BTC", "ETH", "BNB", "EUR"):
        if symbol.endswith(q) and len(symbol) > len(q):
            return symbol[: -len(q)], q
    return symbol[:-4], symbol[-4:]
