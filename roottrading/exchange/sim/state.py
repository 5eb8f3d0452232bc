"""Mutable simulator state: the account ledger, live orders, and one book per symbol.

Why plain __slots__ classes instead of msgspec Structs: these objects are mutated on every fill on the
hot path; domain `Order` snapshots are built from them only when someone asks (`to_order`).
"""

from __future__ import annotations

from decimal import Decimal

from roottrading.domain import Balance, Order, OrderStatus, OrderType, Side, TimeInForce
from roottrading.exchange.errors import InsufficientBalance
from roottrading.exchange.filters import SymbolRules
from roottrading.exchange.sim.fastrules import FastRules

ZERO = Decimal(0)
OPEN_STATUSES = (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


class Ledger:
    """Free and locked amount per asset. Every mutation keeps both >= 0 (the property tests check it)."""

    __slots__ = ("free", "locked")

    def __init__(self) -> None:
        self.free: dict[str, Decimal] = {}
        self.locked: dict[str, Decimal] = {}

    def deposit(self, asset: str, amount: Decimal) -> None:
        if amount < 0:
            raise ValueError(f"deposit must be >= 0, got {amount} {asset}")
        self.free[asset] = self.free.get(asset, ZERO) + amount
        self.locked.setdefault(asset, ZERO)

    def lock(self, asset: str, amount: Decimal) -> None:
        free = self.free.get(asset, ZERO)
        if free < amount:
            raise InsufficientBalance()
        self.free[asset] = free - amount
        self.locked[asset] = self.locked.get(asset, ZERO) + amount

    def unlock(self, asset: str, amount: Decimal) -> None:
        self.locked[asset] -= amount
        self.free[asset] += amount

    def balance(self, asset: str) -> Balance:
        return Balance(asset=asset, free=self.free.get(asset, ZERO), locked=self.locked.get(asset, ZERO))


class Lock:
    """Funds reserved for one order, or shared by the two legs of an OCO (`owners` = live legs)."""

    __slots__ = ("amount", "asset", "owners")

    def __init__(self, asset: str, amount: Decimal, owners: int = 1) -> None:
        self.asset = asset
        self.amount = amount
        self.owners = owners


IN_FLIGHT, WAITING_TRIGGER, WORKING = 0, 1, 2


class SimOrder:
    """An order inside the engine. `stage`: IN_FLIGHT (sent, not yet at the engine: latency), WAITING_TRIGGER
    (a stop order whose condition has not been met), WORKING (matching). `activate_at` is when an in-flight
    order reaches the engine; `in_heap` says a book heap holds it (for lazy deletion accounting)."""

    __slots__ = (
        "activate_at",
        "client_order_id",
        "created_at",
        "cum_quote",
        "executed",
        "in_heap",
        "is_open",
        "list_id",
        "lock",
        "order_id",
        "price",
        "quantity",
        "quote_order_qty",
        "reject_reason",
        "side",
        "stage",
        "status",
        "stop_price",
        "symbol",
        "time_in_force",
        "type",
        "updated_at",
    )

    def __init__(
        self,
        order_id: int,
        client_order_id: str,
        symbol: str,
        side: Side,
        type: OrderType,
        quantity: Decimal,
        price: Decimal | None,
        stop_price: Decimal | None,
        time_in_force: TimeInForce,
        created_at: int,
        quote_order_qty: Decimal | None = None,
    ) -> None:
        self.order_id = order_id
        self.client_order_id = client_order_id
        self.symbol = symbol
        self.side = side
        self.type = type
        self.time_in_force = time_in_force
        self.quantity = quantity
        self.price = price
        self.stop_price = stop_price
        self.quote_order_qty = quote_order_qty
        self.executed = ZERO
        self.cum_quote = ZERO
        self.status = OrderStatus.NEW
        self.created_at = created_at
        self.updated_at = created_at
        self.stage = IN_FLIGHT
        self.in_heap = False
        self.is_open = True  # status is NEW or PARTIALLY_FILLED (a plain attribute: read on every match)
        self.activate_at = created_at
        self.lock: Lock | None = None
        self.list_id = -1
        self.reject_reason: str | None = None

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.executed

    def to_order(self) -> Order:
        return Order(
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            side=self.side,
            type=self.type,
            quantity=self.quantity,
            status=self.status,
            price=self.price,
            stop_price=self.stop_price,
            time_in_force=self.time_in_force,
            exchange_order_id=str(self.order_id),
            executed_quantity=self.executed,
            cumulative_quote=self.cum_quote,
            created_at=self.created_at,
            updated_at=self.updated_at,
            reject_reason=self.reject_reason,
        )


class SymbolBook:
    """Market state and the account's working orders for one symbol.

    Heaps hold (key, seq, order); `seq` is unique so orders are never compared. Cancelled or finished orders
    are dropped lazily when they reach the top, and the heaps are compacted when dead entries pile up.
      bids:       working BUY limits, best (highest) price first  -> key = -price
      asks:       working SELL limits, best (lowest) price first  -> key = price
      stops_up:   untriggered orders that trigger when price >= stop -> key = stop
      stops_down: untriggered orders that trigger when price <= stop -> key = -stop
    """

    __slots__ = (
        "algo_count",
        "ask",
        "asks",
        "base_asset",
        "base_fee_exp",
        "bid",
        "bids",
        "budget",
        "dead",
        "fast",
        "last",
        "open_count",
        "quote_asset",
        "quote_fee_exp",
        "rules",
        "stops_down",
        "stops_up",
    )

    def __init__(self, rules: SymbolRules) -> None:
        self.rules = rules
        self.last: Decimal | None = None
        self.bid: Decimal | None = None
        self.ask: Decimal | None = None
        self.budget: Decimal | None = None  # base quantity still tradable in the current period (None = no cap)
        self.bids: list[tuple[Decimal, int, SimOrder]] = []
        self.asks: list[tuple[Decimal, int, SimOrder]] = []
        self.stops_up: list[tuple[Decimal, int, SimOrder]] = []
        self.stops_down: list[tuple[Decimal, int, SimOrder]] = []
        self.dead = 0
        self.open_count = 0
        self.algo_count = 0
        self.base_fee_exp = Decimal(1).scaleb(-rules.base_commission_precision)
        self.quote_fee_exp = Decimal(1).scaleb(-rules.quote_commission_precision)
        self.fast = FastRules(rules)  # the filter checks, precomputed (hot path)
        self.base_asset, self.quote_asset = rules.base_asset, rules.quote_asset

    def taker_price(self, side: Side) -> Decimal | None:
        """What a taker pays now: the ask for a buy, the bid for a sell, else the last trade."""
        ref = self.ask if side is Side.BUY else self.bid
        return ref if ref is not None else self.last
