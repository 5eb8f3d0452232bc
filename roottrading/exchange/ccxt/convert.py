"""ccxt's unified structures -> the port's types (SymbolRules, Order, Fill), exactly, in Decimal.

Why through `str`: ccxt hands numbers back as floats parsed from the exchange's decimal strings; `str()` of
such a float is the shortest string that parses back to it, i.e. the exchange's own digits. Where the raw
exchange fields are Binance-shaped (`info.status`, `info.type`), they are preferred: they carry states the
unified ones fold together (EXPIRED vs CANCELED, LIMIT_MAKER vs LIMIT).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from roottrading.domain import Fill, Order, OrderStatus, OrderType, Side, TimeInForce
from roottrading.exchange.filters import SymbolRules

ZERO = Decimal(0)
_STATUS = {"closed": OrderStatus.FILLED, "canceled": OrderStatus.CANCELED, "rejected": OrderStatus.REJECTED}
_STATUS.update({"expired": OrderStatus.EXPIRED})
_RAW_STATUS = {s.value for s in OrderStatus}
_RAW_TYPES = {t.value for t in OrderType}


def dec(x: Any) -> Decimal:
    """A ccxt number (float, int or str; None as 0) as the exact Decimal of its decimal text."""
    if x is None:
        return ZERO
    return Decimal(str(x))


def _opt(x: Any) -> Decimal | None:
    return None if x is None else Decimal(str(x))


def _step(value: Any, precision_mode: int) -> Decimal:
    """A precision as a step: TICK_SIZE mode gives the step itself, DECIMAL_PLACES the number of digits."""
    if value is None:
        return ZERO
    if precision_mode == 2:  # ccxt.DECIMAL_PLACES
        return Decimal(1).scaleb(-int(value))
    return Decimal(str(value))


def rules_from_market(market: dict[str, Any], precision_mode: int) -> SymbolRules:
    """SymbolRules from one ccxt market: tick and lot steps from `precision`, bounds from `limits`."""
    limits = market.get("limits") or {}
    price, amount, cost = limits.get("price") or {}, limits.get("amount") or {}, limits.get("cost") or {}
    market_limits = limits.get("market") or {}
    prec = market.get("precision") or {}
    tick = _step(prec.get("price"), precision_mode)
    step = _step(prec.get("amount"), precision_mode)
    min_notional = dec(cost.get("min"))
    return SymbolRules(
        symbol=str(market["id"]),
        base_asset=str(market["base"]),
        quote_asset=str(market["quote"]),
        status="TRADING" if market.get("active", True) is not False else "BREAK",
        min_price=dec(price.get("min")),
        max_price=dec(price.get("max")),
        tick_size=tick,
        min_qty=dec(amount.get("min")),
        max_qty=dec(amount.get("max")),
        step_size=step,
        market_min_qty=_opt(market_limits.get("min")),
        market_max_qty=_opt(market_limits.get("max")),
        notional_filter="NOTIONAL" if min_notional else None,
        min_notional=min_notional,
        max_notional=dec(cost.get("max")),
    )


def order_from_ccxt(o: dict[str, Any], symbol_id: str) -> Order:
    """A ccxt order as the port's Order (`symbol_id` is the exchange's id, e.g. BTCUSDT)."""
    info = o.get("info") or {}
    raw_status = info.get("status") if isinstance(info, dict) else None
    filled = dec(o.get("filled"))
    if raw_status in _RAW_STATUS:
        status = OrderStatus(raw_status)
    elif o.get("status") == "open":
        status = OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.NEW
    else:
        status = _STATUS.get(str(o.get("status")), OrderStatus.NEW)
    raw_type = info.get("type") if isinstance(info, dict) else None
    if raw_type in _RAW_TYPES:
        otype = OrderType(raw_type)
    else:
        otype = OrderType.MARKET if o.get("type") == "market" else OrderType.LIMIT
    tif = o.get("timeInForce")
    price = _opt(o.get("price"))
    created = int(o.get("timestamp") or 0)
    # a Binance cancel answer's clientOrderId is the cancel request's id; the order's own is origClientOrderId
    orig = info.get("origClientOrderId") if isinstance(info, dict) else None
    return Order(
        client_order_id=str(orig or o.get("clientOrderId") or ""),
        symbol=symbol_id,
        side=Side.BUY if o.get("side") == "buy" else Side.SELL,
        type=otype,
        quantity=dec(o.get("amount")),
        status=status,
        price=price if price else None,
        stop_price=_opt(o.get("triggerPrice") or o.get("stopPrice")) or None,
        time_in_force=TimeInForce(tif) if tif in ("GTC", "IOC", "FOK") else TimeInForce.GTC,
        exchange_order_id=str(o["id"]) if o.get("id") is not None else None,
        executed_quantity=filled,
        cumulative_quote=dec(o.get("cost")),
        created_at=created,
        updated_at=int(o.get("lastUpdateTimestamp") or o.get("lastTradeTimestamp") or created),
    )


def fill_from_ccxt(t: dict[str, Any], symbol_id: str, client_order_id: str) -> Fill:
    """A ccxt trade (one execution of an order) as the port's Fill."""
    if t.get("side") not in ("buy", "sell"):  # never guessed: a wrong side corrupts the owner's accounting
        raise ValueError(f"ccxt trade {t.get('id')!r} has no side: {t.get('side')!r}")
    fee = t.get("fee") or {}
    qty, price = dec(t.get("amount")), dec(t.get("price"))
    cost = t.get("cost")
    return Fill(
        trade_id=str(t.get("id")),
        order_id=str(t.get("order")),
        client_order_id=client_order_id,
        symbol=symbol_id,
        side=Side.BUY if t.get("side") == "buy" else Side.SELL,
        price=price,
        quantity=qty,
        quote_quantity=dec(cost) if cost is not None else price * qty,
        commission=dec(fee.get("cost")),
        commission_asset=str(fee.get("currency") or ""),
        time=int(t.get("timestamp") or 0),
        is_maker=t.get("takerOrMaker") == "maker",
    )
