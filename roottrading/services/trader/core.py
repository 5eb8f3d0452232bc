"""The trade-cycle state machine over the Exchange port (see docs/trade-cycle.md for states and transitions).

Rules that make it crash-safe (DESIGN.md principle 3):
- An order intent (deterministic client id, PENDING_NEW) is stored before it is sent; every later state
  is stored before it is announced on the bus.
- Exchange state arrives from three places (place_order answers, the update stream, reconciliation) and is
  merged monotonically (orders.merge); fills are applied once, keyed by trade id.
- One asyncio.Lock serialises every mutation, so the update stream, bus handlers, REST calls and jobs never
  interleave inside a transition. Exchange updates are queued by a synchronous callback and applied under
  the lock (inline after our own calls, or by the pump task for spontaneous ones).

This module keeps the trader's lifecycle, its exchange-update queue and the store/announce plumbing; the rest
is split by job into mixins of TraderCore: cycle_state.py (fills and orders applied, the cycle's status
derived), sending.py (requests into stored, sent orders; exits and their retries), price_watch.py (on_price),
control.py, cycle_exits.py, exchange_stops.py and cycle_adjust.py. outcomes.py classifies exchange errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import msgspec
import structlog

from roottrading import messages as m
from roottrading.bounded import RecentSet
from roottrading.domain import CycleStatus, Fill, Order, OrderRequest, TradeCycle
from roottrading.exchange.base import BalanceUpdate, OrderUpdate
from roottrading.exchange.filters import SymbolRules
from roottrading.services.trader.control import ControlMixin
from roottrading.services.trader.cycle_adjust import CycleAdjustMixin
from roottrading.services.trader.cycle_exits import CycleExitsMixin
from roottrading.services.trader.cycle_hooks import CycleHooks
from roottrading.services.trader.cycle_state import FEE_PRICE_FRESH_MS as FEE_PRICE_FRESH_MS
from roottrading.services.trader.cycle_state import CycleStateMixin
from roottrading.services.trader.exchange_stops import ExchangeStopsConfig, ExchangeStopsMixin
from roottrading.services.trader.orders import digest, fill_from_row
from roottrading.services.trader.outcomes import READ_RETRY as READ_RETRY
from roottrading.services.trader.outcomes import RETRY_LATER as RETRY_LATER
from roottrading.services.trader.outcomes import UNKNOWN_OUTCOME as UNKNOWN_OUTCOME
from roottrading.services.trader.ownership import Ownership, everything_owned, resend_guard_ms
from roottrading.services.trader.price_watch import PriceWatchMixin
from roottrading.services.trader.sending import EXIT_RETRY_BASE_MS as EXIT_RETRY_BASE_MS
from roottrading.services.trader.sending import EXIT_RETRY_MAX_MS as EXIT_RETRY_MAX_MS
from roottrading.services.trader.sending import MAX_EXIT_ATTEMPTS as MAX_EXIT_ATTEMPTS
from roottrading.services.trader.sending import SendingMixin
from roottrading.services.trader.sending import exit_retry_delay_ms as exit_retry_delay_ms

Publish = Callable[..., Awaitable[Any]]


class TraderCore(
    CycleStateMixin,
    SendingMixin,
    PriceWatchMixin,
    ControlMixin,
    CycleExitsMixin,
    ExchangeStopsMixin,
    CycleAdjustMixin,
):
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
        self.stats: dict[str, int] = {
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
