"""Binance Spot REST order/trade bodies -> domain Order / Fill / OrderList.

Handles every shape the order endpoints return: new order (ACK/RESULT/FULL), query order, cancel (where
`clientOrderId` is the cancel request's id and `origClientOrderId` the order's), open/all orders, myTrades
and the OCO list response.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from roottrading.domain import Fill, Order, OrderStatus, Side
from roottrading.exchange.base import OrderList
from roottrading.exchange.binance.user_stream import map_order_type, map_status, map_tif

ZERO = Decimal(0)


def _price(v: Any) -> Decimal | None:
    if v in (None, ""):
        return None
    d = Decimal(str(v))
    return d if d > 0 else None


def order_from_rest(b: dict[str, Any]) -> Order:
    """Any order body. An ACK body (no status) is a NEW order with nothing executed."""
    cid = b.get("origClientOrderId") or b["clientOrderId"]
    created = int(b.get("time", b.get("transactTime", 0)))
    updated = int(b.get("updateTime", b.get("transactTime", created)))
    return Order(
        client_order_id=cid,
        symbol=b["symbol"],
        side=Side(b["side"]) if "side" in b else Side.BUY,
        type=map_order_type(b.get("type", "LIMIT")),
        quantity=Decimal(b.get("origQty", "0")),
        status=map_status(b["status"]) if "status" in b else OrderStatus.NEW,
        price=_price(b.get("price")),
        stop_price=_price(b.get("stopPrice")),
        time_in_force=map_tif(b.get("timeInForce")),
        exchange_order_id=str(b["orderId"]),
        executed_quantity=Decimal(b.get("executedQty", "0")),
        cumulative_quote=Decimal(b.get("cummulativeQuoteQty", "0")),
        created_at=created,
        updated_at=updated,
    )


def fills_from_full(b: dict[str, Any]) -> list[Fill]:
    """The `fills` of a FULL new-order answer (taker fills at placement)."""
    out = []
    for f in b.get("fills", []):
        price, qty = Decimal(f["price"]), Decimal(f["qty"])
        out.append(
            Fill(
                trade_id=str(f["tradeId"]),
                order_id=str(b["orderId"]),
                client_order_id=b["clientOrderId"],
                symbol=b["symbol"],
                side=Side(b["side"]),
                price=price,
                quantity=qty,
                quote_quantity=price * qty,
                commission=Decimal(f.get("commission", "0")),
                commission_asset=f.get("commissionAsset", ""),
                time=int(b.get("transactTime", 0)),
                is_maker=False,
            )
        )
    return out


def trade_from_rest(r: dict[str, Any], client_order_id: str = "") -> Fill:
    """One myTrades row. Binance's row has no client order id; the fake Binance adds `clientOrderId`."""
    return Fill(
        trade_id=str(r["id"]),
        order_id=str(r["orderId"]),
        client_order_id=r.get("clientOrderId", client_order_id),
        symbol=r["symbol"],
        side=Side.BUY if r.get("isBuyer") else Side.SELL,
        price=Decimal(r["price"]),
        quantity=Decimal(r["qty"]),
        quote_quantity=Decimal(r.get("quoteQty", "0")),
        commission=Decimal(r.get("commission", "0")),
        commission_asset=r.get("commissionAsset", ""),
        time=int(r["time"]),
        is_maker=bool(r.get("isMaker")),
    )


def order_list_from_rest(b: dict[str, Any]) -> OrderList:
    reports = b.get("orderReports") or []
    orders = [order_from_rest({**r, "symbol": r.get("symbol", b["symbol"])}) for r in reports]
    return OrderList(
        order_list_id=int(b["orderListId"]),
        list_client_order_id=b["listClientOrderId"],
        symbol=b["symbol"],
        list_status=b.get("listOrderStatus", b.get("listStatusType", "")),
        orders=orders,
        transaction_time=int(b.get("transactionTime", 0)),
    )
