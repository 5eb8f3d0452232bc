"""Enumerations shared by every service. String values match Binance's where Binance has the concept."""

from __future__ import annotations

from enum import Enum


class Side(str, Enum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(str, Enum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP_LOSS_LIMIT = "STOP_LOSS_LIMIT"
    TAKE_PROFIT_LIMIT = "TAKE_PROFIT_LIMIT"
    LIMIT_MAKER = "LIMIT_MAKER"


class TimeInForce(str, Enum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(str, Enum):
    """Binance order statuses, plus PENDING_NEW for an intent stored but not yet acknowledged."""

    PENDING_NEW = "PENDING_NEW"
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    PENDING_CANCEL = "PENDING_CANCEL"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_ORDER


_TERMINAL_ORDER = {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}


class SignalStrength(str, Enum):
    WEAK = "WEAK"
    MODERATE = "MODERATE"
    STRONG = "STRONG"
    VERY_STRONG = "VERY_STRONG"

    @property
    def rank(self) -> int:
        return _STRENGTH_RANK[self]

    @classmethod
    def from_rank(cls, rank: int) -> SignalStrength:
        rank = max(0, min(3, rank))
        return _RANK_STRENGTH[rank]


_STRENGTH_RANK = {
    SignalStrength.WEAK: 0,
    SignalStrength.MODERATE: 1,
    SignalStrength.STRONG: 2,
    SignalStrength.VERY_STRONG: 3,
}
_RANK_STRENGTH = {v: k for k, v in _STRENGTH_RANK.items()}


class CycleStatus(str, Enum):
    """Trade cycle states; see docs/trade-cycle.md for the transitions."""

    INITIATING = "INITIATING"  # intent stored, entry order not yet acknowledged
    WAITING_ENTRY = "WAITING_ENTRY"  # entry order resting on the book
    ACTIVE = "ACTIVE"  # entry filled (fully or partly), position open, exits managed
    WAITING_EXIT = "WAITING_EXIT"  # exit order sent, not yet filled
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"
    FAILED = "FAILED"

    @property
    def is_terminal(self) -> bool:
        return self in (CycleStatus.COMPLETED, CycleStatus.CANCELED, CycleStatus.FAILED)


class TradingMode(str, Enum):
    LIVE = "live"
    DEMO = "demo"
    BACKTEST = "backtest"


class PocketType(str, Enum):
    ACTIVE = "active"
    BUFFER = "buffer"
    SAFETY = "safety"
