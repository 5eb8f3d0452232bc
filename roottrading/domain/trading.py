"""Order-path value types. Money is Decimal everywhere here; time is UTC epoch ms."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from roottrading.domain.enums import (
    CycleStatus,
    OrderStatus,
    OrderType,
    Side,
    SignalStrength,
    TimeInForce,
)


class Signal(msgspec.Struct, frozen=True, kw_only=True):
    """A strategy's opinion at a candle close. `id` is deterministic so a replayed candle gives the same id."""

    id: str
    time: int
    symbol: str
    strategy: str
    side: Side
    strength: SignalStrength
    price: float
    interval: str = "1m"
    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_pct: float | None = None
    regime: str | None = None
    meta: dict[str, str | float | int | bool | None] = {}
    # the strategy's tag for this entry (BUY) or exit (SELL): which rule fired; follows the trade into its cycle
    tag: str | None = None


class OrderRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A validated instruction from the coordinator (or a user) to the trader."""

    id: str  # also used to derive the client order id: idempotent end to end
    time: int
    symbol: str
    side: Side
    type: OrderType = OrderType.MARKET
    quantity: Decimal | None = None
    quote_quantity: Decimal | None = None
    price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    strategy: str = "manual"
    signal_id: str | None = None
    reservation_id: str | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    trailing_pct: Decimal | None = None
    tag: str | None = None  # the signal's entry or exit tag (the trader stores it on the cycle)
    cycle_id: str | None = None  # a BUY adding to this open cycle (position_adjustment), not a new cycle


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    trade_id: str
    order_id: str
    client_order_id: str
    symbol: str
    side: Side
    price: Decimal
    quantity: Decimal
    quote_quantity: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_maker: bool = False
    # A commission paid in a third asset (neither base nor quote, e.g. BNB) valued in the quote asset at the
    # fill's time, set by the trader when it applies the fill (None: not a third asset, or no price found).
    # Stored with the fill so every later PnL computation uses the same value, whatever BNB does next.
    commission_quote: Decimal | None = None


class Order(msgspec.Struct, kw_only=True):
    """An order as the exchange sees it (mutable: fills and status change over its life)."""

    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    status: OrderStatus = OrderStatus.PENDING_NEW
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    exchange_order_id: str | None = None
    executed_quantity: Decimal = Decimal(0)
    cumulative_quote: Decimal = Decimal(0)
    cycle_id: str | None = None
    created_at: int = 0
    updated_at: int = 0
    reject_reason: str | None = None

    @property
    def average_price(self) -> Decimal | None:
        if self.executed_quantity == 0:
            return None
        return self.cumulative_quote / self.executed_quantity


class TradeCycle(msgspec.Struct, kw_only=True):
    """An entry and its exit: the unit the PnL and the dashboard talk about."""

    id: str
    symbol: str
    strategy: str
    side: Side
    status: CycleStatus
    created_at: int
    updated_at: int
    entry_order_id: str | None = None
    exit_order_id: str | None = None
    entry_price: Decimal | None = None
    exit_price: Decimal | None = None
    quantity: Decimal = Decimal(0)
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    trailing_pct: Decimal | None = None
    trailing_extreme: Decimal | None = None
    fees: Decimal = Decimal(0)
    profit_loss: Decimal | None = None
    profit_loss_percent: Decimal | None = None
    reservation_id: str | None = None
    signal_id: str | None = None
    close_reason: str | None = None
    # Third-asset fees no price could be found for (e.g. "0.001 BNB"): left out of `fees` and the PnL, and
    # said here so the PnL is not silently overstated (None: every fee is counted).
    unpriced_fees: str | None = None
    # the strategy's tags of the signals that opened and closed the cycle (None: untagged, or not a signal)
    entry_tag: str | None = None
    exit_tag: str | None = None


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    asset: str
    free: Decimal
    locked: Decimal
    value_quote: Decimal | None = None

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


class Pocket(msgspec.Struct, frozen=True, kw_only=True):
    pocket_type: str
    allocation_percent: Decimal
    current_value: Decimal
    used_value: Decimal
    available_value: Decimal
