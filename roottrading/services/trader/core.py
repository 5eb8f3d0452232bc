"""The trade-cycle state machine over the Exchange port (see docs/trade-cycle.md for states and transitions).

Rules that make it crash-safe (DESIGN.md principle 3):
- An order intent (deterministic client id, PENDING_NEW) is stored before it is sent; every later state
  is stored before it is announced on the bus.
- Exchange state arrives from three places (place_order answers, the update stream, reconciliation) and is
  merged monotonically (orders.merge); fills are applied once, keyed by trade id.
- One asyncio.Lock serialises every mutation, so the update stream, bus handlers, REST calls and jobs never
  interleave inside a transition. Exchange updates are queued by a synchronous callback and applied under
  the lock (inline after our own calls, or by the pump task for spontaneous ones).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any

import msgspec
import structlog

from roottrading import ids
from roottrading import messages as m
from roottrading.bounded import RecentSet
from roottrading.capital.pnl import split_symbol
from roottrading.domain import CycleStatus, Fill, Order, OrderRequest, OrderStatus, OrderType, Side, TradeCycle
from roottrading.exchange.base import BalanceUpdate, OrderUpdate
from roottrading.exchange.errors import (
    BinanceError,
    CancelRejected,
    Disconnected,
    DuplicateOrder,
    ExchangeError,
    NoSuchOrder,
    OrderFateUnknown,
    RateLimited,
    TooManyOrders,
)
from roottrading.exchange.filters import SymbolRules
from roottrading.services.trader.control import ControlMixin
from roottrading.services.trader.cycle_adjust import CycleAdjustMixin
from roottrading.services.trader.cycle_exits import CycleExitsMixin
from roottrading.services.trader.cycle_hooks import CycleHooks
from roottrading.services.trader.exchange_stops import ExchangeStopsConfig, ExchangeStopsMixin
from roottrading.services.trader.orders import digest, entry_order, fill_from_row, merge
from roottrading.services.trader.ownership import Ownership, everything_owned, resend_guard_ms
from roottrading.services.trader.position import apply_fills, position, walk_exits
from roottrading.services.trader.stops import STOP_TYPES, sim_exit_order
from roottrading.store.repos_orders import ReservationNotLive
from roottrading.strategies.cycle_callbacks import VETOABLE_EXITS

# Outcome unknown: the order may or may not exist. Query by client id before any retry.
UNKNOWN_OUTCOME = (OrderFateUnknown, Disconnected, TimeoutError, ConnectionError, OSError)
# Certainly not accepted, try again later with the same client id.
RETRY_LATER = (RateLimited, TooManyOrders)
# A read (order, trades, balances) that failed for any exchange reason changes nothing: try again later.
READ_RETRY = (ExchangeError, *UNKNOWN_OUTCOME)
Publish = Callable[..., Awaitable[Any]]
MAX_EXIT_ATTEMPTS = 5  # failed exits of one cycle before an alert-level log line; retries go on (back-off)
EXIT_RETRY_BASE_MS = 60_000  # a rejected/expired exit is tried again after 1, 2, 4, ... minutes of market time
EXIT_RETRY_MAX_MS = 3_600_000  # ... at most an hour apart, for as long as the position is open
FEE_PRICE_FRESH_MS = 300_000  # a last price this close to a fill's time values its third-asset fee


def exit_retry_delay_ms(failed_exits: int) -> int:
    """Market time to wait after the `failed_exits`-th failed exit: never once per price, never given up."""
    return int(min(EXIT_RETRY_BASE_MS * 2 ** max(0, min(failed_exits - 1, 30)), EXIT_RETRY_MAX_MS))


class TraderCore(ControlMixin, CycleExitsMixin, ExchangeStopsMixin, CycleAdjustMixin):
    """Cycles, orders and fills of one account. The Service wires it to the bus, the store and HTTP."""

    def __init__(
        self,
        exchange: Any,
        orders: Any,
        cycles: Any,
        publish: Publish,
        clock: Any,
        *,
        quote_asset: str = "USDT",
        resend_window_ms: int = 60_000,
    ) -> None:
        self.exchange, self.orders, self.cycles, self.publish, self.clock = exchange, orders, cycles, publish, clock
        self.quote_asset = quote_asset
        self.resend_window_ms = resend_window_ms
        # Reconciliation never re-sends an intent younger than this (platform clock, from its stored created_at):
        # the process that stored it (this one before a crash, or the previous owner of its symbol) may still be
        # sending it, and Binance refuses a duplicate client id only among OPEN orders (ownership.py).
        self.resend_min_age_ms = resend_guard_ms(exchange)
        self.owner: Ownership = everything_owned()  # the symbols this instance manages (ownership.py)
        self.log = structlog.get_logger(__name__)
        self.lock = asyncio.Lock()
        self.rules: dict[str, SymbolRules] = {}
        self.last_price: dict[str, Decimal] = {}
        self.open: dict[str, TradeCycle] = {}  # non-terminal cycles by id
        self.order_cache: dict[str, Order] = {}  # orders of open cycles by client id
        self.fills: dict[str, list[Fill]] = {}  # cycle id -> its fills
        self.adopt_lookback_ms = 24 * 3_600_000  # reconciliation reads the exchange's trades this far back
        self.adopt_checked_to: dict[str, int] = {}  # symbol -> trades before this time were checked
        self.exit_alerted: set[str] = set()  # cycles whose failing exit was reported (cleared with the cycle)
        self.seen_trades: RecentSet[tuple[str, str]] = RecentSet(100_000)  # fast path; the store dedups
        self.announced: dict[str, str] = {}  # cycle id -> digest of the last announced state
        self.inbox: deque[Any] = deque()
        self.wake = asyncio.Event()
        self.paused = False
        self.killed = False
        self.paused_strategies: set[str] = set()
        self.balances_dirty = False
        self.balances_min_interval_s = 0.0  # the service sets 1 s for a remote exchange
        self._balances_at = 0.0
        self.stats = {
            "requests": 0,
            "duplicates": 0,
            "orders_sent": 0,
            "rejected": 0,
            "unknown_outcome": 0,
            "fills": 0,
            "resent": 0,
            "exit_vetoes": 0,  # exits a strategy's confirm_exit vetoed (cycle_exits.py)
            "adjustments": 0,  # additions to open cycles sent for position_adjustment (cycle_adjust.py)
            "entries_expired": 0,  # limit entries (order_type) cancelled after limit_entry_timeout_s (cycle_exits.py)
        }
        self._unsubscribe: Callable[[], None] | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self.started = False  # set after start(): from then on a takeover loads its symbols (ownership.py)
        # the strategies' position callbacks (cycle_exits.py); the service gives the loaded strategies and a
        # DecisionRepo (exit vetoes are stored as decisions); without them: no callbacks, vetoes only logged
        self.hooks = CycleHooks(adjustments=self._adjustments_done)
        self.decisions: Any = None
        self.funder: Any = None  # funds position_adjustment's additions (the coordinator; cycle_adjust.py)
        # cycle id -> the addition asked, being funded (None once a funding call has claimed it)
        self.adjusting: dict[str, tuple[OrderRequest, Decimal] | None] = {}
        self.untold_fills: dict[str, list[Fill]] = {}  # cycle id -> fills applied, not yet told to on_fill
        self.xstops, self._protecting, self._no_oco = ExchangeStopsConfig(), set(), set()  # exchange_stops.py

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.rules = dict(await self.exchange.exchange_info())
        self._unsubscribe = self.exchange.subscribe_updates(self._on_update)
        await self._load()
        await self.reconcile()
        await self.reannounce()
        self._pump_task = asyncio.create_task(self._pump(), name="trader:exchange-updates")
        self.started = True

    async def stop(self) -> None:
        if self._pump_task is not None:
            self._pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
        async with self.lock:
            await self._drain()
        if self._unsubscribe is not None:
            self._unsubscribe()

    async def _load(self) -> list[str]:
        """Load the open cycles of the owned symbols not in memory yet, with their orders and fills; their ids."""
        loaded = []
        for c in await self.cycles.open_cycles():
            if c.id in self.open or not self.owner.owns(c.symbol):
                continue
            loaded.append(c.id)
            self.open[c.id] = c
            self.announced[c.id] = digest(c)
            for o in await self.orders.query(cycle_id=c.id, limit=10_000):
                self.order_cache[o.client_order_id] = o
                for row in await self.orders.fills(order_id=o.client_order_id, limit=100_000):
                    f = fill_from_row(row)
                    self.fills.setdefault(c.id, []).append(f)
                    self.seen_trades.add((f.symbol, f.trade_id))
        return loaded

    def forget_unowned(self) -> int:
        """Drop from memory the cycles (and their orders and fills) of symbols this instance no longer owns:
        their next owner manages them from the store. Caller holds the lock. Returns the cycles dropped."""
        gone = [cid for cid, c in self.open.items() if not self.owner.owns(c.symbol)]
        for cid in gone:
            self.open.pop(cid, None)
            self.announced.pop(cid, None)
            self.fills.pop(cid, None)
            self.exit_alerted.discard(cid)
        for coid, o in list(self.order_cache.items()):
            if o.cycle_id in gone or (o.cycle_id is None and not self.owner.owns(o.symbol)):
                self.order_cache.pop(coid, None)
        return len(gone)

    # ------------------------------------------------------------------ exchange updates
    def _on_update(self, update: Any) -> None:
        """Exchange callback (sync): queue, apply later under the lock."""
        self.inbox.append(update)
        self.wake.set()

    async def _pump(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            async with self.lock:
                await self._drain()

    async def _drain(self) -> None:
        while self.inbox:
            u = self.inbox.popleft()
            if isinstance(u, OrderUpdate):
                await self._apply_remote(u.order, u.fill, u.execution_type)
            elif isinstance(u, BalanceUpdate):
                self.balances_dirty = True
        # an account query per fill batch would exceed a real exchange's weight budget: at most one per interval
        # (the periodic balances job publishes whatever is still dirty)
        if self.balances_dirty and time.monotonic() - self._balances_at >= self.balances_min_interval_s:
            self.balances_dirty = False
            self._balances_at = time.monotonic()
            await self.publish_balances()

    async def settle(self) -> None:
        """Apply every queued exchange update now (tests, benchmarks, shutdown)."""
        async with self.lock:
            await self._drain()

    async def _apply_remote(self, remote: Order, fill: Fill | None, event: str) -> None:
        if not self.owner.owns(remote.symbol):
            return  # the account's update stream reaches every instance: the symbol's owner applies it
        local = await self._order(remote.client_order_id)
        if local is None:
            return  # not ours (another client on the account) or a cycle already closed
        if fill is not None:
            await self._apply_fill(local, fill)
        merged = merge(local, remote)
        if merged is not None:
            await self._save_order(merged, event)
        if local.cycle_id:
            await self._advance(local.cycle_id)

    async def _apply_fill(self, order: Order, fill: Fill) -> bool:
        key = (fill.symbol, fill.trade_id)
        if key in self.seen_trades:
            return False
        if fill.client_order_id != order.client_order_id:
            fill = msgspec.structs.replace(fill, client_order_id=order.client_order_id)
        fill = await self._value_fee(fill)
        new = await self.orders.add_fill(fill)
        self.seen_trades.add(key)
        if order.cycle_id:  # once per trade id: a fill forgotten by seen_trades may come back
            known = self.fills.setdefault(order.cycle_id, [])
            if not any(f.trade_id == fill.trade_id and f.symbol == fill.symbol for f in known):
                known.append(fill)
                self._fill_applied(order.cycle_id, fill)
        if new:
            self.stats["fills"] += 1
            self.balances_dirty = True
            await self.publish(m.TRADE_EXECUTIONS, fill, key=fill.symbol, msg_id=f"fill:{fill.symbol}:{fill.trade_id}")
        return new

    async def _value_fee(self, fill: Fill) -> Fill:
        """Set `commission_quote` of a fee paid in a third asset (BNB): its value in quote at the fill's
        time, stored with the fill, so the cycle's PnL, the ledger's settlement, daily loss, drawdown and the
        PnL tracker all count it at one value (capital/pnl.py).

        Price of ASSET+QUOTE, in this order: the trader's own last price of that pair when it is at most
        FEE_PRICE_FRESH_MS from the fill (a pair the trader follows: no request), else the exchange's
        optional `price_at(symbol, fill.time)` (the simulator: its book's last price; Binance: the 1-minute
        kline holding the fill, so a fill learnt of late is still priced at its own time). No price: a
        warning, and the cycle reports the fee in `unpriced_fees` instead of counting it as 0."""
        if not fill.commission or fill.commission_quote is not None:
            return fill
        rules = self.rules.get(fill.symbol)
        base, quote = split_symbol(fill.symbol, rules.quote_asset if rules else self.quote_asset)
        asset = fill.commission_asset
        if asset in (base, quote):
            return fill
        pair = f"{asset}{quote}"
        price = self.last_price.get(pair)
        if price is not None and abs(self.clock.now_ms() - fill.time) > FEE_PRICE_FRESH_MS:
            price = None
        price_at = getattr(self.exchange, "price_at", None)
        if price is None and price_at is not None:
            try:
                price = await price_at(pair, fill.time)
            except READ_RETRY as exc:
                self.log.warning("fee asset price unavailable", pair=pair, error=repr(exc))
        if price is None:
            self.log.warning(
                "fee not priced: left out of the cycle's PnL and reported in its unpriced_fees",
                asset=asset,
                commission=str(fill.commission),
                symbol=fill.symbol,
                trade=fill.trade_id,
            )
            return fill
        return msgspec.structs.replace(fill, commission_quote=fill.commission * price)

    async def _fetch_fills(self, order: Order) -> None:
        """Fills missed (while down, or not pushed yet): from my_trades, matched by client or exchange id."""
        start = order.created_at - 60_000
        from_id: int | None = None
        while True:
            try:
                trades = await self.exchange.my_trades(
                    order.symbol, start_time=None if from_id else start, from_id=from_id, limit=500
                )
            except READ_RETRY as exc:
                self.log.warning("my_trades failed; fills fetched on the next reconciliation", error=repr(exc))
                return
            for f in trades:
                if f.client_order_id == order.client_order_id or (
                    order.exchange_order_id and f.order_id == order.exchange_order_id
                ):
                    await self._apply_fill(order, f)
            if len(trades) < 500 or not trades[-1].trade_id.isdigit():
                return
            from_id = int(trades[-1].trade_id) + 1

    # ------------------------------------------------------------------ store + announce
    async def _order(self, client_order_id: str) -> Order | None:
        o = self.order_cache.get(client_order_id)
        return o if o is not None else await self.orders.get(client_order_id)

    async def _save_order(self, order: Order, event: str | None) -> None:
        await self.orders.save(order)
        if order.cycle_id in self.open or order.cycle_id is None:
            self.order_cache[order.client_order_id] = order
        if event is not None:
            await self.publish(
                m.ORDER_UPDATES,
                m.OrderUpdate(event=event, order=order, time=self.clock.now_ms()),
                key=order.symbol,
                msg_id=f"{order.client_order_id}:{order.status.value}:{order.executed_quantity}",
            )

    async def _save_cycle(self, c: TradeCycle, announce: bool = True) -> None:
        c.updated_at = max(c.updated_at, self.clock.now_ms())
        await self.cycles.save(c)
        if c.status.is_terminal:
            self.open.pop(c.id, None)
        else:
            self.open[c.id] = c
        if announce:
            await self._announce(c)

    async def _announce(self, c: TradeCycle) -> None:
        d = digest(c)
        if self.announced.get(c.id) == d:
            return
        await self.publish(m.CYCLE_UPDATES, c, key=c.symbol, msg_id=f"{c.id}:{c.status.value}:{d}")
        if c.status.is_terminal:
            self.announced.pop(c.id, None)
            for o in [o for o in self.order_cache.values() if o.cycle_id == c.id]:
                self.order_cache.pop(o.client_order_id, None)
            self.fills.pop(c.id, None)
            self.exit_alerted.discard(c.id)
        else:
            self.announced[c.id] = d

    async def reannounce(self) -> None:
        """After a restart: announce the current state of every open cycle and of recently closed ones (a
        crash between store and announce loses nothing; ids are content hashes, so consumers dedupe)."""
        for c in list(self.open.values()):
            await self.publish(m.CYCLE_UPDATES, c, key=c.symbol, msg_id=f"{c.id}:{c.status.value}:{digest(c)}")
        terminal = [s.value for s in CycleStatus if s.is_terminal]
        since = self.clock.now_ms() - 86_400_000
        for c in (await self.cycles.query(status=terminal, limit=500))[0]:
            if c.updated_at >= since and self.owner.owns(c.symbol):
                await self.publish(m.CYCLE_UPDATES, c, key=c.symbol, msg_id=f"{c.id}:{c.status.value}:{digest(c)}")

    async def publish_balances(self) -> None:
        try:
            bals = await self.exchange.balances()
        except READ_RETRY as exc:
            self.log.warning("balances unavailable", error=repr(exc))
            return
        out, total = [], Decimal(0)
        for asset, b in sorted(bals.items()):
            px = Decimal(1) if asset == self.quote_asset else self.last_price.get(f"{asset}{self.quote_asset}")
            value = (b.free + b.locked) * px if px is not None else None
            if value is None and b.free + b.locked > 0:
                total = None  # type: ignore[assignment]  # an unpriced holding: total unknown
            elif total is not None and value is not None:
                total += value
            out.append(msgspec.structs.replace(b, value_quote=value))
        await self.publish(
            m.PORTFOLIO_BALANCES,
            m.BalancesUpdate(time=self.clock.now_ms(), balances=out, total_value=total, quote_asset=self.quote_asset),
            key="balances",
        )

    # ------------------------------------------------------------------ the state machine
    def _cycle_orders(self, cycle_id: str) -> list[Order]:
        return [o for o in self.order_cache.values() if o.cycle_id == cycle_id]

    def _sellable(self, symbol: str, held: Decimal) -> Decimal | None:
        """The quantity a MARKET sell of `held` may carry (rounded down), or None for dust."""
        r = self.rules[symbol]
        q = r.round_quantity(held, market=True)
        if q <= 0 or q < r.min_qty:
            return None
        px = self.last_price.get(symbol)
        if px is not None and r.notional_filter and r.min_notional_apply_to_market and q * px < r.min_notional:
            return None
        return q

    async def _advance(self, cycle_id: str) -> None:
        """Derive the cycle's status and figures from its orders and fills; store and announce a change."""
        c = self.open.get(cycle_id)
        if c is None:
            self.untold_fills.pop(cycle_id, None)
            return
        entry = self.order_cache.get(c.entry_order_id or "")
        if entry is None:
            return
        self._adopt_stop_fill(c)  # an exchange stop that executed is the cycle's exit
        exit_ = self.order_cache.get(c.exit_order_id) if c.exit_order_id else None
        for o in (entry, exit_, *self._adds(cycle_id)):
            if o is not None and o.executed_quantity > sum(
                (f.quantity for f in self.fills.get(c.id, []) if f.client_order_id == o.client_order_id), Decimal(0)
            ):
                await self._fetch_fills(o)
                got = sum(
                    (f.quantity for f in self.fills.get(c.id, []) if f.client_order_id == o.client_order_id), Decimal(0)
                )
                if o.executed_quantity > got:
                    return  # fills not visible yet: decide when they are
        before = digest(c)
        base, quote = split_symbol(c.symbol, self.rules[c.symbol].quote_asset)
        pos = position(self.fills.get(c.id, []), base)
        status = c.status
        if exit_ is not None and not exit_.status.is_terminal:
            status = CycleStatus.WAITING_EXIT
        elif exit_ is not None and c.status is CycleStatus.WAITING_EXIT:
            if self._sellable(c.symbol, pos.held) is None and exit_.executed_quantity > 0:
                status = CycleStatus.COMPLETED
            else:
                status = CycleStatus.ACTIVE  # exit failed, expired or only reduced: still holding
                if exit_.status is OrderStatus.FILLED:
                    c.close_reason = None  # a reduce: nothing left to do
                else:  # close_reason kept: the exit is retried on the next price (see on_price)
                    self.log.warning(
                        "exit did not complete; retried on the next price",
                        cycle=c.id,
                        order=exit_.client_order_id,
                        status=exit_.status.value,
                        reason=exit_.reject_reason,
                    )
        elif entry.status is OrderStatus.PENDING_NEW:
            status = CycleStatus.INITIATING
        elif not entry.status.is_terminal:
            status = CycleStatus.ACTIVE if pos.bought > 0 else CycleStatus.WAITING_ENTRY
        elif pos.bought > 0:
            status = CycleStatus.ACTIVE
        elif entry.status is OrderStatus.REJECTED or entry.type is OrderType.MARKET:
            status = CycleStatus.FAILED
            c.close_reason = c.close_reason or entry.reject_reason or f"entry {entry.status.value} without a fill"
        else:
            status = CycleStatus.CANCELED
            c.close_reason = c.close_reason or f"entry {entry.status.value} without a fill"
        if status is CycleStatus.ACTIVE and entry.status.is_terminal and self._sellable(c.symbol, pos.held) is None:
            status = CycleStatus.COMPLETED
            c.close_reason = c.close_reason or f"position {pos.held} below the exchange minimum (dust, not sold)"
        if status is CycleStatus.ACTIVE and c.trailing_pct and c.trailing_extreme is None:
            c.trailing_extreme = pos.entry_price
        c.status = status
        apply_fills(c, self.fills.get(c.id, []), base, quote)
        if digest(c) != before or self.announced.get(c.id) != digest(c):
            await self._save_cycle(c)
        self._tell_fills(c)
        await self._protect(c)  # place or move its exchange stop (exchange_stops.py)

    # ------------------------------------------------------------------ sending
    async def _send(self, order: Order) -> None:
        """Send a stored intent. Definite rejection -> REJECTED; unknown outcome -> stays PENDING_NEW."""
        try:
            remote = await self.exchange.place_order(
                symbol=order.symbol,
                side=order.side,
                type=order.type,
                client_order_id=order.client_order_id,
                quantity=order.quantity,
                price=order.price,
                stop_price=order.stop_price,
                time_in_force=order.time_in_force,
            )
        except DuplicateOrder:
            await self._adopt(order)
        except RETRY_LATER as exc:
            self.log.warning(
                "exchange busy; intent kept for the next reconciliation", order=order.client_order_id, error=str(exc)
            )
        except BinanceError as exc:
            if isinstance(exc, UNKNOWN_OUTCOME):
                await self._unknown(order, exc)
                return
            self.stats["rejected"] += 1
            self.log.warning("order rejected", order=order.client_order_id, code=exc.code, reason=exc.msg)
            rejected = msgspec.structs.replace(
                order,
                status=OrderStatus.REJECTED,
                reject_reason=f"{exc.code}: {exc.msg}",
                updated_at=self.clock.now_ms(),
            )
            await self._save_order(rejected, "REJECTED")
        except (ExchangeError, *UNKNOWN_OUTCOME) as exc:
            await self._unknown(order, exc)
        else:
            self.stats["orders_sent"] += 1
            local = self.order_cache.get(order.client_order_id, order)
            merged = merge(local, remote)
            if merged is not None:
                await self._save_order(merged, "NEW")
        await self._drain()
        if order.cycle_id:
            await self._advance(order.cycle_id)

    async def _unknown(self, order: Order, exc: BaseException) -> None:
        self.stats["unknown_outcome"] += 1
        self.log.warning("order outcome unknown; will query by client id", order=order.client_order_id, error=repr(exc))

    async def _adopt(self, order: Order) -> None:
        """The exchange already has this client id (a resend after an unknown outcome): take its state."""
        try:
            remote = await self.exchange.get_order(order.symbol, order.client_order_id)
        except READ_RETRY as exc:
            self.log.warning("cannot query order", order=order.client_order_id, error=repr(exc))
            return
        await self._apply_remote(remote, None, "RECONCILED")

    async def _cancel(self, order: Order) -> None:
        try:
            remote = await self.exchange.cancel_order(order.symbol, order.client_order_id)
        except (CancelRejected, NoSuchOrder):
            try:
                remote = await self.exchange.get_order(order.symbol, order.client_order_id)
            except NoSuchOrder:
                remote = msgspec.structs.replace(
                    order, status=OrderStatus.REJECTED, reject_reason="canceled before it reached the exchange"
                )
        except UNKNOWN_OUTCOME + RETRY_LATER as exc:
            self.log.warning("cancel failed; retried by reconciliation", order=order.client_order_id, error=repr(exc))
            return
        await self._drain()
        await self._apply_remote(remote, None, "CANCELED")

    # ------------------------------------------------------------------ requests
    async def handle_request(self, req: OrderRequest) -> TradeCycle | None:
        async with self.lock:
            self.stats["requests"] += 1
            if req.side is Side.BUY:
                return await self._open(req)
            await self._exit_request(req)
            return None

    async def _open(self, req: OrderRequest) -> TradeCycle | None:
        cid = ids.cycle_id(req.id)
        existing = self.open.get(cid)
        if existing is not None:
            self.stats["duplicates"] += 1
            return existing  # redelivered request: one cycle, one order
        now = self.clock.now_ms()
        coid = ids.client_order_id(req.id, "entry")
        c = TradeCycle(
            id=cid,
            symbol=req.symbol,
            strategy=req.strategy,
            side=Side.BUY,
            status=CycleStatus.INITIATING,
            created_at=now,
            updated_at=now,
            entry_order_id=coid,
            stop_loss=req.stop_loss,
            take_profit=req.take_profit,
            trailing_pct=req.trailing_pct,
            signal_id=req.signal_id,
            reservation_id=req.reservation_id,
            entry_tag=req.tag,
        )
        rules = self.rules.get(req.symbol)
        order: Order | None = None
        reason: str | None = None
        if self.paused or req.strategy in self.paused_strategies:
            c.status, c.close_reason = CycleStatus.CANCELED, "trading paused: entry not sent"
        elif rules is None:
            c.status, c.close_reason = CycleStatus.FAILED, f"unknown symbol {req.symbol}"
        else:
            try:
                order = entry_order(req, rules, self.last_price.get(req.symbol), coid, cid, now)
            except BinanceError as exc:
                reason = f"{exc.code}: {exc.msg}"
                c.status, c.close_reason = CycleStatus.FAILED, reason
        if order is None:  # refused before sending: recorded once, never over an existing cycle
            if await self.cycles.get(cid) is not None:
                self.stats["duplicates"] += 1
                return await self.cycles.get(cid)
            if reason is not None:
                await self.orders.save(
                    Order(
                        client_order_id=coid,
                        symbol=req.symbol,
                        side=Side.BUY,
                        type=req.type,
                        quantity=req.quantity or Decimal(0),
                        price=req.price,
                        cycle_id=cid,
                        status=OrderStatus.REJECTED,
                        reject_reason=reason,
                        created_at=now,
                        updated_at=now,
                    )
                )
            await self._save_cycle(c)
            return c
        # the cycle and the intent, in one transaction, before anything is sent (claiming the reservation)
        try:
            created = await self.cycles.create_with_order(c, order, demo=self.orders.demo)
        except ReservationNotLive:  # released meanwhile (reconciliation after a long delay): never sent
            self.log.warning(
                "entry not sent: its reservation was released", request=req.id, reservation=c.reservation_id
            )
            c.status, c.close_reason = CycleStatus.CANCELED, "reservation released before the entry was sent"
            await self._save_cycle(c)
            return c
        if not created:
            self.stats["duplicates"] += 1
            return await self.cycles.get(cid)
        self.open[cid] = c
        self.order_cache[order.client_order_id] = order
        await self._send(order)
        await self._advance(cid)
        return self.open.get(cid) or c

    async def _exit_request(self, req: OrderRequest) -> None:
        targets = sorted(
            (
                c
                for c in self.open.values()
                if c.symbol == req.symbol
                and c.strategy == req.strategy
                and c.status in (CycleStatus.ACTIVE, CycleStatus.WAITING_ENTRY)
            ),
            key=lambda c: c.created_at,
        )
        if not targets:
            self.log.info(
                "exit request without an open position", request=req.id, symbol=req.symbol, strategy=req.strategy
            )
            return
        remaining = req.quantity
        for c in targets:
            if remaining is not None and remaining <= 0:
                break
            coid = ids.client_order_id(req.id, f"exit:{c.id}")
            if await self._order(coid) is not None:
                self.stats["duplicates"] += 1
                continue
            reason = "manual" if req.strategy == "manual" else "signal"
            price = self.last_price.get(c.symbol) or c.entry_price or Decimal(0)
            if reason in VETOABLE_EXITS and not await self._exit_confirmed(c, reason, price):
                continue
            c.exit_tag = req.tag or c.exit_tag
            order = await self.start_exit(
                c, reason, quantity=remaining, client_order_id=coid, type=req.type, price=req.price
            )
            if order is not None and remaining is not None:
                remaining -= order.quantity

    async def start_exit(
        self,
        c: TradeCycle,
        reason: str,
        *,
        quantity: Decimal | None = None,
        client_order_id: str | None = None,
        type: OrderType = OrderType.MARKET,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> Order | None:
        """Sell what the cycle holds (or `quantity` of it). Caller holds the lock. Returns the exit order,
        None when there is nothing to sell (an unfilled entry is cancelled instead). `stop_price` makes a
        STOP_LOSS_LIMIT / TAKE_PROFIT_LIMIT exit (a simulated stop, see on_price)."""
        entry = self.order_cache.get(c.entry_order_id or "")
        if entry is not None and not entry.status.is_terminal:
            await self._cancel(entry)
            await self._advance(c.id)
        if not await self._unprotect(c, reason):  # its exchange stop first: never two sells of one position
            return None
        c = self.open.get(c.id)  # type: ignore[assignment]
        if c is None or c.status is not CycleStatus.ACTIVE:
            return None
        rules = self.rules[c.symbol]
        base, _ = split_symbol(c.symbol, rules.quote_asset)
        held = position(self.fills.get(c.id, []), base).held
        want = held if quantity is None else min(quantity, held)
        market = type is OrderType.MARKET
        qty = rules.round_quantity(want, market=market)
        px = rules.round_price(price) if price is not None and not market else None
        stop = rules.round_price(stop_price) if stop_price is not None and not market else None
        try:
            rules.check(Side.SELL, type, qty, px, stop, self.last_price.get(c.symbol))
        except BinanceError as exc:
            self.log.warning("exit not possible", cycle=c.id, quantity=str(qty), reason=exc.msg)
            return None
        n = len(self._exit_sells(c.id))
        coid = client_order_id or ids.client_order_id(c.id, f"exit:{n}")
        now = self.clock.now_ms()
        order = Order(
            client_order_id=coid,
            symbol=c.symbol,
            side=Side.SELL,
            type=type,
            quantity=qty,
            price=px,
            stop_price=stop,
            cycle_id=c.id,
            created_at=now,
            updated_at=now,
        )
        await self._save_order(order, None)
        c.exit_order_id, c.close_reason, c.status = coid, reason, CycleStatus.WAITING_EXIT
        await self._save_cycle(c)
        await self._send(order)
        return self.order_cache.get(coid, order)

    async def _retry_exit(self, c: TradeCycle) -> None:
        """Send the exit of a cycle whose last exit failed again once its back-off has passed. Caller holds
        the lock. After MAX_EXIT_ATTEMPTS failures an alert-level line (once per cycle) asks for a human."""
        sells = self._exit_sells(c.id)
        if sells:
            last = max(o.updated_at for o in sells)
            if self.clock.now_ms() - last < exit_retry_delay_ms(len(sells)):
                return
        if len(sells) >= MAX_EXIT_ATTEMPTS and c.id not in self.exit_alerted:
            self.exit_alerted.add(c.id)
            last_reason = max(sells, key=lambda o: o.updated_at).reject_reason if sells else None
            self.log.critical(
                "exit keeps failing; the position is still open and its exit is retried with back-off",
                cycle=c.id,
                symbol=c.symbol,
                attempts=len(sells),
                reason=c.close_reason,
                last_error=last_reason,
            )
        await self.start_exit(c, c.close_reason or "retry")

    # ------------------------------------------------------------------ prices
    async def on_price(
        self, symbol: str, path: Sequence[Decimal], feed: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """New market prices in time order: walk every watched cycle's exits along them.

        Without `feed` (live, or an exchange with a market of its own) a met condition becomes a MARKET exit
        at once: the trader sees prices as they come, so the market is still near the level.
        With `feed` (the trader pushes the same data into an in-process simulator) the exit the data reaches is
        placed on the simulator *before* it is fed (stops.sim_exit_order), so the simulator's own intra-bar
        path fills it at the stop, the target, or the open of a bar that gaps through; resting orders then
        fill in the same walk. One path, the engine's, decides the price. Whatever the simulator did not fill
        as expected is cancelled and sold at market after the data (the behaviour before, as a fallback)."""
        async with self.lock:
            watched = [c.id for c in self.open.values() if c.symbol == symbol and c.status is CycleStatus.ACTIVE]
            if watched and not self.owner.owns(symbol):
                watched = []  # lease expired, hand-over not run yet: the next owner watches them
            due: dict[str, tuple[str, str | None]] = {}  # cycle id -> (exit reason, exit placed before the feed)
            for cid in watched:  # cycles activated by this very data wait for the next one
                c = self.open.get(cid)
                if c is None or c.status is not CycleStatus.ACTIVE or c.close_reason is not None:
                    continue  # (an exit that expired or was rejected is retried below)
                extreme = c.trailing_extreme
                on_exchange = self._exchange_exits(cid, path)  # what rests on the exchange (exchange_stops.py)
                reason, level = walk_exits(c, path, not on_exchange[1], stops=not on_exchange[0])
                if reason in VETOABLE_EXITS and level is not None and not await self._exit_confirmed(c, reason, level):
                    c.trailing_extreme = extreme  # the target vetoed: walk the same path for the stops only
                    reason, level = walk_exits(c, path, take_profit=False, stops=not on_exchange[0])
                if reason is None or level is None:
                    if c.trailing_extreme != extreme:
                        await self.cycles.save(c)  # trailing stop moved: stored, not a transition
                    continue
                placed = None
                if feed is not None:
                    placed = await self._sim_exit(c, reason, level, c.trailing_extreme != extreme, path)
                due[cid] = (reason, placed)
            if feed is not None:
                await feed()
                await self._drain()
            self.last_price[symbol] = path[-1]
            for cid in watched:
                c = self.open.get(cid)
                if c is None:
                    continue
                if cid in due:
                    await self._exit_after_data(c, *due[cid])
                elif c.status is CycleStatus.ACTIVE and c.close_reason is not None:
                    await self._retry_exit(c)  # spaced out by exit_retry_delay_ms
                elif c.status is CycleStatus.ACTIVE:
                    await self._cycle_callbacks(c, path[-1])  # the strategy's custom exit / stop (cycle_exits.py)
                    await self._protect(c)  # a moved stop moves its exchange order (rate-limited)
            await self._expire_limit_entries(symbol)  # order_type's limit entries past their time (cycle_exits.py)
        await self._fund_additions()  # position_adjustment's, asked above, funded without the lock (cycle_adjust.py)

    async def _sim_exit(
        self, c: TradeCycle, reason: str, level: Decimal, raised: bool, path: Sequence[Decimal]
    ) -> str | None:
        """Place the exit `reason` met at `level` as the simulator order that fills there; its client id, or
        None when no order fits (see stops.sim_exit_order). Caller holds the lock, before the feed."""
        rules = self.rules[c.symbol]
        resting_stops = sum(
            1
            for o in self.order_cache.values()
            if o.symbol == c.symbol and o.type in STOP_TYPES and not o.status.is_terminal
        )
        if rules.max_num_algo_orders is not None and resting_stops >= rules.max_num_algo_orders:
            return None
        base, _ = split_symbol(c.symbol, rules.quote_asset)
        held = position(self.fills.get(c.id, []), base).held
        plan = sim_exit_order(reason, level, raised, self.last_price.get(c.symbol), path, rules, held)
        if plan is None:
            return None
        order = await self.start_exit(c, reason, type=plan.type, price=plan.price, stop_price=plan.stop_price)
        return order.client_order_id if order is not None else None

    async def _exit_after_data(self, c: TradeCycle, reason: str, placed: str | None) -> None:
        """After the data: a condition met without an order placed for it exits at market now; an exit placed
        before the feed that is still open (not triggered as expected: prices off the tick grid, liquidity) is
        cancelled and the rest sold at market; one that ended (filled, or refused: then retried with back-off
        like any failed exit) needs nothing more."""
        if placed is not None:
            order = self.order_cache.get(placed)
            if order is None or order.status.is_terminal:
                return
            self.log.info("simulated exit not filled by the bar; selling at market", cycle=c.id, order=placed)
            await self._cancel(order)
            await self._advance(c.id)
        current = self.open.get(c.id)
        if current is not None and current.status is CycleStatus.ACTIVE:
            await self.start_exit(current, reason)
