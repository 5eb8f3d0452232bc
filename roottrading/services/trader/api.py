"""Trader REST routes (reference: GET /health, /orders, POST /order, DELETE /order/{id}, POST /close/{id},
POST /config/pause|resume) plus cycles, trades and symbol rules for the dashboard.

Manual orders are validated against the symbol's Binance filters here, with a 422 that says which filter
failed and what would pass, so the dashboard can show it next to the field.

A manual ENTRY (BUY) then goes through the coordinator's money rules (manual.py; coordinator.manual_entry):
risk check and pocket reservation, skipping only the strategy filters. A refusal is a 422 with the reason;
an unreachable coordinator a 503 (never sent unfunded). Accepted, the coordinator publishes the funded
request on `order.requests` (the durable path); this route also hands it to the trader at once to answer
with the order, and the bus copy is then a duplicate (cycles are keyed by request id). Manual EXITS (SELL
of open cycles) go straight to the trader: they free funds, and the cycle's settlement releases them.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from roottrading import ids
from roottrading import messages as m
from roottrading.domain import OrderRequest, OrderType, Side, TimeInForce
from roottrading.domain.money import plain_text
from roottrading.exchange.errors import BinanceError, FilterFailure
from roottrading.exchange.filters import SymbolRules
from roottrading.runtime.errors import error_responses
from roottrading.runtime.params import MAX_AMOUNT, MIN_AMOUNT, Text
from roottrading.runtime.params import offset as offset_query
from roottrading.services.trader.manual import CoordinatorUnavailable
from roottrading.services.trader.orders import entry_order

if TYPE_CHECKING:
    from roottrading.services.trader.service import TraderService


class ManualOrder(BaseModel):
    symbol: Text
    side: Literal["BUY", "SELL"]
    type: Literal["MARKET", "LIMIT"] = "MARKET"
    # bounded: a quantity of 1e999999 made the filters' rounding raise (a 500); runtime/params.py says why
    quantity: Decimal | None = Field(None, ge=MIN_AMOUNT, le=MAX_AMOUNT)
    quote_quantity: Decimal | None = Field(None, ge=MIN_AMOUNT, le=MAX_AMOUNT)
    price: Decimal | None = Field(None, ge=MIN_AMOUNT, le=MAX_AMOUNT)
    time_in_force: Literal["GTC", "IOC", "FOK"] = "GTC"
    strategy: Text = "manual"
    request_id: Text | None = Field(None, max_length=100, description="idempotency key: same id, same order")


def explain(exc: BinanceError, r: SymbolRules, qty: Any, price: Any) -> str:
    """A human message for a filter failure, with the limits that apply."""
    if isinstance(exc, FilterFailure):
        f = exc.filter_type
        if f in ("LOT_SIZE", "MARKET_LOT_SIZE"):
            return (
                f"quantity {qty} fails {f}: min {r.min_qty}, max {r.max_qty}, step {r.step_size} "
                f"(nearest valid: {r.round_quantity(Decimal(qty))})"
                if qty is not None
                else f"fails {f}"
            )
        if f == "PRICE_FILTER":
            return f"price {price} fails PRICE_FILTER: min {r.min_price}, max {r.max_price}, tick {r.tick_size}" + (
                f" (nearest valid: {r.round_price(Decimal(price))})" if price is not None else ""
            )
        if f in ("MIN_NOTIONAL", "NOTIONAL"):
            return f"order value fails {f}: at least {r.min_notional} {r.quote_asset} is required"
        if f in ("PERCENT_PRICE_BY_SIDE", "PERCENT_PRICE"):
            return f"price {price} is too far from the market ({f}: x{r.bid_multiplier_down}..x{r.bid_multiplier_up})"
        return f"filter failure: {f}"
    return f"{exc.code}: {exc.msg}"


def build_router(svc: TraderService) -> APIRouter:
    r = APIRouter()
    core = svc.core

    @r.get("/symbols")
    async def symbols() -> list[dict[str, Any]]:
        return [
            {
                "symbol": s.symbol,
                "base_asset": s.base_asset,
                "quote_asset": s.quote_asset,
                "status": s.status,
                "tick_size": plain_text(s.tick_size),
                "min_price": plain_text(s.min_price),
                "max_price": plain_text(s.max_price),
                "step_size": plain_text(s.step_size),
                "min_qty": plain_text(s.min_qty),
                "max_qty": plain_text(s.max_qty),
                "min_notional": plain_text(s.min_notional),
                "order_types": sorted(s.order_types),
                "last_price": plain_text(core.last_price[s.symbol]) if s.symbol in core.last_price else None,
            }
            for s in sorted(core.rules.values(), key=lambda x: x.symbol)
        ]

    @r.get("/orders")
    async def orders(
        symbol: str | None = None,
        status: str | None = None,
        limit: int = Query(100, ge=1, le=1000),
        offset: int = offset_query(),
    ) -> list[dict[str, Any]]:
        rows = await svc.orders.query(
            symbol=symbol, status=status.split(",") if status else None, limit=limit, offset=offset
        )
        return [m.to_builtins(o) for o in rows]

    @r.post("/order", responses=error_responses(409, 422))
    async def place(body: ManualOrder) -> dict[str, Any]:
        sym = body.symbol.upper()
        rules = core.rules.get(sym)
        if rules is None:
            raise HTTPException(422, f"unknown symbol {sym}; tradable: {', '.join(sorted(core.rules))}")
        if body.type == "LIMIT" and body.price is None:
            raise HTTPException(422, "a LIMIT order needs a price")
        if body.type == "MARKET" and body.price is not None:
            raise HTTPException(422, "a MARKET order takes no price")
        if (body.quantity is None) == (body.quote_quantity is None):
            raise HTTPException(422, "give exactly one of quantity or quote_quantity")
        req = OrderRequest(
            id=body.request_id or f"manual-{uuid.uuid4().hex}",
            time=svc.ctx.clock.now_ms(),
            symbol=sym,
            side=Side(body.side),
            type=OrderType(body.type),
            quantity=body.quantity,
            quote_quantity=body.quote_quantity,
            price=body.price,
            time_in_force=TimeInForce(body.time_in_force),
            strategy=body.strategy,
        )
        if req.side is Side.BUY:
            for value, check in ((body.quantity, rules.round_quantity), (body.price, rules.round_price)):
                if value is not None and check(value) != value:
                    name = "quantity" if check == rules.round_quantity else "price"
                    grid = f"step size {rules.step_size}" if name == "quantity" else f"tick size {rules.tick_size}"
                    raise HTTPException(
                        422,
                        f"{name} {value} is not a multiple of the {grid} (nearest valid: {check(value).normalize():f})",
                    )
            try:
                entry_order(req, rules, core.last_price.get(sym), "check", "check", 0)
            except BinanceError as exc:
                raise HTTPException(422, explain(exc, rules, body.quantity, body.price)) from None
            price = body.price or core.last_price.get(sym)
            if price is None:
                raise HTTPException(409, f"no market price for {sym} yet: the entry cannot be funded")
            try:
                answer = await svc.manual.submit(req, price)
            except CoordinatorUnavailable as exc:
                raise HTTPException(503, f"manual entry not sent: {exc}") from None
            if answer["decision"] != "accepted" or not answer.get("request"):
                raise HTTPException(422, f"manual entry refused: {answer['reason']}")
            req = msgspec.convert(answer["request"], OrderRequest, strict=False)
            cycle = await core.handle_request(req)
            order = await svc.orders.get(ids.client_order_id(req.id, "entry"))
            if order is None or cycle is None:
                raise HTTPException(409, cycle.close_reason if cycle else "order not created")
            if order.reject_reason and cycle.status.value == "FAILED":
                raise HTTPException(422, f"rejected by the exchange: {order.reject_reason}")
            return m.to_builtins(order)
        open_ids = [c.id for c in core.open.values() if c.symbol == sym and c.strategy == body.strategy]
        await core.handle_request(req)
        made = [o for o in [await svc.orders.get(ids.client_order_id(req.id, f"exit:{cid}")) for cid in open_ids] if o]
        if not made:
            raise HTTPException(409, f"no open {sym} position of strategy {body.strategy!r} to sell")
        return m.to_builtins(made[0]) | {"orders": [m.to_builtins(o) for o in made]}

    @r.delete("/order/{order_id}", responses=error_responses(404, 409))
    async def cancel(order_id: str) -> dict[str, Any]:
        try:
            return m.to_builtins(await core.cancel(order_id))
        except KeyError:
            raise HTTPException(404, f"order {order_id} not found") from None
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None

    @r.post("/close/{cycle_id}", responses=error_responses(404, 409))
    async def close(cycle_id: str) -> dict[str, Any]:
        try:
            return m.to_builtins(await core.close(cycle_id))
        except KeyError:
            raise HTTPException(404, f"cycle {cycle_id} not found") from None
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None

    @r.post("/config/pause")
    async def pause() -> dict[str, Any]:
        core.pause()
        svc.risk_paused = False  # the user's pause now: no risk cooldown lifts it
        await svc.save_safety()
        await svc.takeover.tell_others("pause")  # every other trader instance too
        svc.log.info("trading paused: no new entries (exits still run)")
        return {"paused": True}

    @r.post("/config/resume")
    async def resume() -> dict[str, Any]:
        core.resume()
        svc.risk_paused = False
        await svc.save_safety()
        await svc.takeover.tell_others("resume")
        svc.log.info("trading resumed")
        return {"paused": False}

    @r.get("/cycles")
    async def cycles(
        status: str | None = None,
        symbol: str | None = None,
        strategy: str | None = None,
        limit: int = Query(50, ge=1, le=500),
        offset: int = offset_query(),
    ) -> dict[str, Any]:
        page, total = await svc.cycles.query(
            status=status.split(",") if status else None, symbol=symbol, strategy=strategy, limit=limit, offset=offset
        )
        return {"total": total, "limit": limit, "offset": offset, "items": [m.to_builtins(c) for c in page]}

    @r.get("/cycles/{cycle_id}", responses=error_responses(404))
    async def cycle(cycle_id: str) -> dict[str, Any]:
        c = await svc.cycles.get(cycle_id)
        if c is None:
            raise HTTPException(404, f"cycle {cycle_id} not found")
        orders_ = await svc.orders.query(cycle_id=cycle_id, limit=1000)
        fills = [f for o in orders_ for f in await svc.orders.fills(order_id=o.client_order_id, limit=10_000)]
        return m.to_builtins(c) | {"orders": [m.to_builtins(o) for o in orders_], "fills": [_plain(f) for f in fills]}

    @r.get("/trades")
    async def trades(
        symbol: str | None = None,
        order_id: str | None = None,
        limit: int = Query(100, ge=1, le=1000),
        offset: int = offset_query(),
    ) -> list[dict[str, Any]]:
        return [
            _plain(row) for row in await svc.orders.fills(symbol=symbol, order_id=order_id, limit=limit, offset=offset)
        ]

    return r


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: plain_text(v) if isinstance(v, Decimal) else v for k, v in row.items()}
