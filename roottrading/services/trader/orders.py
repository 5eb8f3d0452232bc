"""Order bookkeeping helpers: monotonic merge of exchange state, entry sizing, row conversion.

Why a monotonic merge: the same order state reaches the trader several ways (the place_order answer, the
update stream, reconciliation queries) in any order. Status only moves forward and executed quantity only
grows, so an old answer can never undo a newer one.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import msgspec

from roottrading.domain import Fill, Order, OrderRequest, OrderStatus, OrderType, Side, TimeInForce
from roottrading.exchange.errors import InvalidMessage
from roottrading.exchange.filters import SymbolRules

_RANK = {OrderStatus.PENDING_NEW: 0, OrderStatus.NEW: 1, OrderStatus.PENDING_CANCEL: 1, OrderStatus.PARTIALLY_FILLED: 2}


def rank(s: OrderStatus) -> int:
    return 3 if s.is_terminal else _RANK[s]


def merge(local: Order, remote: Order) -> Order | None:
    """`local` updated with what `remote` (the exchange's view) adds; None when nothing changes."""
    upd: dict[str, Any] = {}
    if remote.exchange_order_id and remote.exchange_order_id != local.exchange_order_id:
        upd["exchange_order_id"] = remote.exchange_order_id
    if remote.executed_quantity > local.executed_quantity:
        upd["executed_quantity"] = remote.executed_quantity
        upd["cumulative_quote"] = remote.cumulative_quote
    if not local.status.is_terminal and rank(remote.status) > rank(local.status):
        upd["status"] = remote.status
        if remote.reject_reason:
            upd["reject_reason"] = remote.reject_reason
    if not upd:
        return None
    upd["updated_at"] = max(local.updated_at, remote.updated_at)
    return msgspec.structs.replace(local, **upd)


def entry_order(
    req: OrderRequest, rules: SymbolRules, last_price: Decimal | None, client_order_id: str, cycle_id: str, now: int
) -> Order:
    """The entry order for a BUY request, rounded onto the symbol's grid and checked against its filters.

    A quote amount is turned into a quantity here (with the last price for MARKET, the limit price for
    LIMIT) so the stored intent can be re-sent byte for byte after a crash. Raises InvalidMessage /
    FilterFailure (Binance's errors) with the reason."""
    market = req.type is OrderType.MARKET
    if req.type not in (OrderType.MARKET, OrderType.LIMIT):
        raise InvalidMessage(f"order type {req.type.value} is not supported for entries (MARKET or LIMIT)")
    price = None
    if not market:
        if req.price is None or req.price <= 0:
            raise InvalidMessage("a LIMIT order needs a positive price")
        price = rules.round_price(req.price)
    ref = price if price is not None else last_price
    if req.quantity is not None:
        qty = req.quantity
    elif req.quote_quantity is not None:
        if ref is None:
            raise InvalidMessage(f"no market price for {req.symbol} yet: cannot size a quote amount")
        qty = req.quote_quantity / ref
    else:
        raise InvalidMessage("quantity or quote_quantity is required")
    qty = rules.round_quantity(qty, market=market)
    if qty <= 0:
        raise InvalidMessage(f"quantity rounds to 0 on the {rules.step_size} step")
    rules.check(Side.BUY, req.type, qty, price, None, last_price)
    return Order(
        client_order_id=client_order_id,
        symbol=req.symbol,
        side=Side.BUY,
        type=req.type,
        quantity=qty,
        price=price,
        time_in_force=req.time_in_force if not market else TimeInForce.GTC,
        cycle_id=cycle_id,
        created_at=now,
        updated_at=now,
    )


def fill_from_row(r: dict[str, Any]) -> Fill:
    return Fill(
        trade_id=str(r["trade_id"]),
        order_id=str(r.get("exchange_order_id") or ""),
        client_order_id=r["order_id"],
        symbol=r["symbol"],
        side=Side(r["side"]),
        price=r["price"],
        quantity=r["quantity"],
        quote_quantity=r["quote_quantity"],
        commission=r["commission"],
        commission_asset=r["commission_asset"],
        time=int(r["time"]),
        is_maker=bool(r.get("is_maker")),
        commission_quote=r.get("commission_quote"),
    )


def digest(obj: Any) -> str:
    """A content hash: the bus message id of an announced state (same state -> same id -> deduplicated)."""
    return hashlib.sha1(msgspec.msgpack.encode(obj)).hexdigest()[:16]
