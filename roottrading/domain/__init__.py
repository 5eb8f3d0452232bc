"""Value types shared by every service (msgspec Structs, so they double as bus payloads)."""

from roottrading.domain.enums import (
    CycleStatus,
    OrderStatus,
    OrderType,
    PocketType,
    Side,
    SignalStrength,
    TimeInForce,
    TradingMode,
)
from roottrading.domain.market import INTERVAL_MS, Candle, Tick, interval_ms
from roottrading.domain.trading import Balance, Fill, Order, OrderRequest, Pocket, Signal, TradeCycle

__all__ = [
    "INTERVAL_MS",
    "Balance",
    "Candle",
    "CycleStatus",
    "Fill",
    "Order",
    "OrderRequest",
    "OrderStatus",
    "OrderType",
    "Pocket",
    "PocketType",
    "Side",
    "Signal",
    "SignalStrength",
    "Tick",
    "TimeInForce",
    "TradeCycle",
    "TradingMode",
    "interval_ms",
]
