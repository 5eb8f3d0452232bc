"""Binance symbol filters (exchangeInfo) as one immutable `SymbolRules` per symbol.

Why: every order must be rounded to the exchange's tick and step sizes and checked against its notional and
price-band limits *before* it is sent, and the simulator must reject exactly what Binance rejects. Both use
this module. Checks follow Binance's documented formulas:

- PRICE_FILTER: price >= minPrice, price <= maxPrice, (price - minPrice) % tickSize == 0 (0 disables a check).
- LOT_SIZE / MARKET_LOT_SIZE: the same three checks on quantity with minQty/maxQty/stepSize.
  MARKET_LOT_SIZE applies to MARKET orders in addition to LOT_SIZE.
- MIN_NOTIONAL (older) and NOTIONAL (newer): price * quantity >= minNotional (and <= maxNotional for NOTIONAL);
  for MARKET orders only when applyToMarket / applyMinToMarket / applyMaxToMarket, priced at the average price.
- PERCENT_PRICE_BY_SIDE (and the older PERCENT_PRICE): a BUY price must lie in
  [avg * bidMultiplierDown, avg * bidMultiplierUp], a SELL price in [avg * askMultiplierDown, avg * askMultiplierUp].

"avg" is Binance's avgPriceMins-minute weighted price; callers pass the best reference they have
(`last_price`). Price-relative checks are skipped when no reference price is known.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from pathlib import Path
from typing import Any

from roottrading.domain import Order, OrderType, Side
from roottrading.exchange.errors import FilterFailure, InvalidMessage, InvalidSymbol

ZERO = Decimal(0)
_STOP_TYPES = (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)


def _d(value: Any, default: str = "0") -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal(default)


def _floor_to(value: Decimal, base: Decimal, step: Decimal) -> Decimal:
    """Largest base + k*step (k integer >= 0) that is <= value; `value` itself when step is 0."""
    if step <= 0:
        return value
    k = ((value - base) / step).to_integral_value(rounding=ROUND_DOWN)
    return base + k * step


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """Trading rules of one spot symbol, parsed from one entry of exchangeInfo's "symbols" list."""

    symbol: str
    base_asset: str
    quote_asset: str
    status: str = "TRADING"
    base_precision: int = 8
    quote_precision: int = 8
    base_commission_precision: int = 8
    quote_commission_precision: int = 8
    order_types: frozenset[str] = frozenset(t.value for t in OrderType)
    oco_allowed: bool = True
    quote_order_qty_market_allowed: bool = True
    # PRICE_FILTER
    min_price: Decimal = ZERO
    max_price: Decimal = ZERO
    tick_size: Decimal = ZERO
    # LOT_SIZE
    min_qty: Decimal = ZERO
    max_qty: Decimal = ZERO
    step_size: Decimal = ZERO
    # MARKET_LOT_SIZE (None when the symbol has no such filter)
    market_min_qty: Decimal | None = None
    market_max_qty: Decimal | None = None
    market_step_size: Decimal | None = None
    # MIN_NOTIONAL or NOTIONAL; `notional_filter` names the one the symbol uses, for the error text
    notional_filter: str | None = None
    min_notional: Decimal = ZERO
    max_notional: Decimal = ZERO
    min_notional_apply_to_market: bool = True
    max_notional_apply_to_market: bool = False
    # PERCENT_PRICE_BY_SIDE or PERCENT_PRICE (bid/ask multipliers equal for the latter)
    percent_filter: str | None = None
    bid_multiplier_up: Decimal = ZERO
    bid_multiplier_down: Decimal = ZERO
    ask_multiplier_up: Decimal = ZERO
    ask_multiplier_down: Decimal = ZERO
    max_num_orders: int | None = None
    max_num_algo_orders: int | None = None

    # ------------------------------------------------------------------ parsing
    @classmethod
    def from_binance(cls, info: dict[str, Any]) -> SymbolRules:
        """Parse one exchangeInfo symbol object. Unknown filter types are ignored (Binance adds new ones)."""
        kw: dict[str, Any] = {
            "symbol": info["symbol"],
            "base_asset": info["baseAsset"],
            "quote_asset": info["quoteAsset"],
            "status": info.get("status", "TRADING"),
            "base_precision": int(info.get("baseAssetPrecision", 8)),
            "quote_precision": int(info.get("quoteAssetPrecision", info.get("quotePrecision", 8))),
            "base_commission_precision": int(info.get("baseCommissionPrecision", 8)),
            "quote_commission_precision": int(info.get("quoteCommissionPrecision", 8)),
            "oco_allowed": bool(info.get("ocoAllowed", True)),
            "quote_order_qty_market_allowed": bool(info.get("quoteOrderQtyMarketAllowed", True)),
        }
        if "orderTypes" in info:
            kw["order_types"] = frozenset(info["orderTypes"])
        for f in info.get("filters", []):
            ft = f.get("filterType")
            if ft == "PRICE_FILTER":
                kw.update(
                    min_price=_d(f.get("minPrice")), max_price=_d(f.get("maxPrice")), tick_size=_d(f.get("tickSize"))
                )
            elif ft == "LOT_SIZE":
                kw.update(min_qty=_d(f.get("minQty")), max_qty=_d(f.get("maxQty")), step_size=_d(f.get("stepSize")))
            elif ft == "MARKET_LOT_SIZE":
                kw.update(
                    market_min_qty=_d(f.get("minQty")),
                    market_max_qty=_d(f.get("maxQty")),
                    market_step_size=_d(f.get("stepSize")),
                )
            elif ft == "MIN_NOTIONAL" and kw.get("notional_filter") != "NOTIONAL":
                kw.update(
                    notional_filter="MIN_NOTIONAL",
                    min_notional=_d(f.get("minNotional")),
                    min_notional_apply_to_market=bool(f.get("applyToMarket", True)),
                )
            elif ft == "NOTIONAL":
                kw.update(
                    notional_filter="NOTIONAL",
                    min_notional=_d(f.get("minNotional")),
                    max_notional=_d(f.get("maxNotional")),
                    min_notional_apply_to_market=bool(f.get("applyMinToMarket", True)),
                    max_notional_apply_to_market=bool(f.get("applyMaxToMarket", False)),
                )
            elif ft == "PERCENT_PRICE_BY_SIDE":
                kw.update(
                    percent_filter="PERCENT_PRICE_BY_SIDE",
                    bid_multiplier_up=_d(f.get("bidMultiplierUp")),
                    bid_multiplier_down=_d(f.get("bidMultiplierDown")),
                    ask_multiplier_up=_d(f.get("askMultiplierUp")),
                    ask_multiplier_down=_d(f.get("askMultiplierDown")),
                )
            elif ft == "PERCENT_PRICE" and kw.get("percent_filter") != "PERCENT_PRICE_BY_SIDE":
                up, down = _d(f.get("multiplierUp")), _d(f.get("multiplierDown"))
                kw.update(
                    percent_filter="PERCENT_PRICE",
                    bid_multiplier_up=up,
                    bid_multiplier_down=down,
                    ask_multiplier_up=up,
                    ask_multiplier_down=down,
                )
            elif ft == "MAX_NUM_ORDERS":
                kw["max_num_orders"] = int(f["maxNumOrders"])
            elif ft == "MAX_NUM_ALGO_ORDERS":
                kw["max_num_algo_orders"] = int(f["maxNumAlgoOrders"])
        return cls(**kw)

    # ------------------------------------------------------------------ rounding
    def round_price(self, price: Decimal) -> Decimal:
        """Round down onto the tick grid (minPrice + k*tickSize), clamped to maxPrice. Never above the input."""
        p = _floor_to(price, self.min_price if price >= self.min_price else ZERO, self.tick_size)
        if self.max_price > 0 and p > self.max_price:
            p = _floor_to(self.max_price, self.min_price, self.tick_size)
        return p

    def round_price_up(self, price: Decimal) -> Decimal:
        """Round up onto the tick grid (for a buyer's worst-case price)."""
        if self.tick_size <= 0:
            return price
        k = ((price - self.min_price) / self.tick_size).to_integral_value(rounding=ROUND_UP)
        return self.min_price + k * self.tick_size

    def round_quantity(self, quantity: Decimal, market: bool = False) -> Decimal:
        """Round down onto the LOT_SIZE grid (and MARKET_LOT_SIZE's for market orders), clamped to maxQty.

        Rounding down means the result never exceeds the input (never spends more than was sized)."""
        step, lo, hi = self.step_size, self.min_qty, self.max_qty
        q = _floor_to(quantity, lo if quantity >= lo else ZERO, step)
        if hi > 0 and q > hi:
            q = _floor_to(hi, lo, step)
        if market and self.market_step_size is not None:
            if self.market_step_size > 0:
                q = _floor_to(q, self.market_min_qty or ZERO, self.market_step_size)
            if self.market_max_qty and q > self.market_max_qty:
                q = _floor_to(self.market_max_qty, lo, step)
        return q

    # ------------------------------------------------------------------ checks
    def check_price(self, price: Decimal) -> None:
        if price <= 0:
            raise InvalidMessage("Invalid price.")
        if self.min_price > 0 and price < self.min_price:
            raise FilterFailure("PRICE_FILTER")
        if self.max_price > 0 and price > self.max_price:
            raise FilterFailure("PRICE_FILTER")
        if self.tick_size > 0 and (price - self.min_price) % self.tick_size != 0:
            raise FilterFailure("PRICE_FILTER")

    def check_quantity(self, quantity: Decimal, market: bool = False) -> None:
        if quantity <= 0:
            raise InvalidMessage("Invalid quantity.")
        if (
            (self.min_qty > 0 and quantity < self.min_qty)
            or (self.max_qty > 0 and quantity > self.max_qty)
            or (self.step_size > 0 and (quantity - self.min_qty) % self.step_size != 0)
        ):
            raise FilterFailure("LOT_SIZE")
        if market and self.market_step_size is not None:
            lo, hi, step = self.market_min_qty or ZERO, self.market_max_qty or ZERO, self.market_step_size
            if (lo > 0 and quantity < lo) or (hi > 0 and quantity > hi) or (step > 0 and (quantity - lo) % step != 0):
                raise FilterFailure("MARKET_LOT_SIZE")

    def check_notional(self, notional: Decimal, market: bool = False) -> None:
        if self.notional_filter is None:
            return
        if self.min_notional > 0 and notional < self.min_notional and (not market or self.min_notional_apply_to_market):
            raise FilterFailure(self.notional_filter)
        if self.max_notional > 0 and notional > self.max_notional and (not market or self.max_notional_apply_to_market):
            raise FilterFailure(self.notional_filter)

    def check_percent_price(self, side: Side, price: Decimal, avg_price: Decimal) -> None:
        if self.percent_filter is None or avg_price <= 0:
            return
        if side is Side.BUY:
            up, down = self.bid_multiplier_up, self.bid_multiplier_down
        else:
            up, down = self.ask_multiplier_up, self.ask_multiplier_down
        if (up > 0 and price > avg_price * up) or (down > 0 and price < avg_price * down):
            raise FilterFailure(self.percent_filter)

    def check(
        self,
        side: Side,
        type: OrderType,
        quantity: Decimal,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
        last_price: Decimal | None = None,
    ) -> None:
        """Raise the Binance error this order would get; return None when every filter passes."""
        if type.value not in self.order_types:
            raise InvalidOrderTypeForSymbol()
        market = type is OrderType.MARKET
        self.check_quantity(quantity, market)
        if market:
            if last_price is not None:
                self.check_notional(quantity * last_price, market=True)
            return
        if price is None:
            raise InvalidMessage("Invalid price.")
        self.check_price(price)
        if type in _STOP_TYPES:
            if stop_price is None:
                raise InvalidMessage("Stop price is required for this order type.")
            self.check_price(stop_price)
        self.check_notional(quantity * price)
        if last_price is not None:
            self.check_percent_price(side, price, last_price)

    def validate(self, order: Order, last_price: Decimal | None = None) -> None:
        """`check` for a domain Order (its symbol must match)."""
        if order.symbol != self.symbol:
            raise InvalidSymbol()
        self.check(order.side, order.type, order.quantity, order.price, order.stop_price, last_price)


class InvalidOrderTypeForSymbol(InvalidMessage):
    def __init__(self) -> None:
        super().__init__("Unsupported order combination")


# ---------------------------------------------------------------------- exchangeInfo documents
def parse_exchange_info(doc: dict[str, Any]) -> dict[str, SymbolRules]:
    """All symbols of an exchangeInfo body, by symbol name."""
    return {s["symbol"]: SymbolRules.from_binance(s) for s in doc.get("symbols", [])}


def load_exchange_info(path: str | Path) -> dict[str, SymbolRules]:
    """Read an exchangeInfo body from a file: plain JSON, or a cryptofeed capture (`URL -> ts: <json>`)."""
    text = Path(path).read_text(encoding="utf-8")
    start = text.find("{")
    if start < 0:
        raise ValueError(f"{path}: no JSON object found")
    doc, _ = json.JSONDecoder().raw_decode(text, start)
    return parse_exchange_info(doc)


def rules_to_binance(rules: SymbolRules) -> dict[str, Any]:
    """Render rules back to an exchangeInfo symbol object (the fake Binance server serves this)."""

    def s(v: Decimal | None) -> str:
        return f"{(v or ZERO):.8f}"

    filters: list[dict[str, Any]] = [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": s(rules.min_price),
            "maxPrice": s(rules.max_price),
            "tickSize": s(rules.tick_size),
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": s(rules.min_qty),
            "maxQty": s(rules.max_qty),
            "stepSize": s(rules.step_size),
        },
    ]
    if rules.market_step_size is not None:
        filters.append(
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": s(rules.market_min_qty),
                "maxQty": s(rules.market_max_qty),
                "stepSize": s(rules.market_step_size),
            }
        )
    if rules.notional_filter == "MIN_NOTIONAL":
        filters.append(
            {
                "filterType": "MIN_NOTIONAL",
                "minNotional": s(rules.min_notional),
                "applyToMarket": rules.min_notional_apply_to_market,
                "avgPriceMins": 5,
            }
        )
    elif rules.notional_filter == "NOTIONAL":
        filters.append(
            {
                "filterType": "NOTIONAL",
                "minNotional": s(rules.min_notional),
                "applyMinToMarket": rules.min_notional_apply_to_market,
                "maxNotional": s(rules.max_notional),
                "applyMaxToMarket": rules.max_notional_apply_to_market,
                "avgPriceMins": 5,
            }
        )
    if rules.percent_filter == "PERCENT_PRICE_BY_SIDE":
        filters.append(
            {
                "filterType": "PERCENT_PRICE_BY_SIDE",
                "bidMultiplierUp": str(rules.bid_multiplier_up),
                "bidMultiplierDown": str(rules.bid_multiplier_down),
                "askMultiplierUp": str(rules.ask_multiplier_up),
                "askMultiplierDown": str(rules.ask_multiplier_down),
                "avgPriceMins": 5,
            }
        )
    elif rules.percent_filter == "PERCENT_PRICE":
        filters.append(
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": str(rules.bid_multiplier_up),
                "multiplierDown": str(rules.bid_multiplier_down),
                "avgPriceMins": 5,
            }
        )
    if rules.max_num_orders is not None:
        filters.append({"filterType": "MAX_NUM_ORDERS", "maxNumOrders": rules.max_num_orders})
    if rules.max_num_algo_orders is not None:
        filters.append({"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": rules.max_num_algo_orders})
    return {
        "symbol": rules.symbol,
        "status": rules.status,
        "baseAsset": rules.base_asset,
        "baseAssetPrecision": rules.base_precision,
        "quoteAsset": rules.quote_asset,
        "quotePrecision": rules.quote_precision,
        "quoteAssetPrecision": rules.quote_precision,
        "baseCommissionPrecision": rules.base_commission_precision,
        "quoteCommissionPrecision": rules.quote_commission_precision,
        "orderTypes": sorted(rules.order_types),
        "ocoAllowed": rules.oco_allowed,
        "quoteOrderQtyMarketAllowed": rules.quote_order_qty_market_allowed,
        "filters": filters,
    }
