"""The paper account (demo/paper mode's in-process simulated exchange) stored across restarts.

Why: the store keeps the open cycles across a restart; an account that started afresh (10,000 USDT, no
position) would then hold none of what the cycles hold, and every exit would be rejected "insufficient
balance". So the whole simulated account (balances, locks, open and recent orders, trades, id counters; see
exchange/sim/snapshot.py) is stored as one document (safety_state, key "paper_account") after every call
that changed it, before the result reaches the trader. A crash can lose only the account's last change
before its snapshot, and the trader never stored anything about that change yet: its intent is still
PENDING_NEW and reconciliation finds no such order, exactly as if it had never been sent.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import structlog

from roottrading.clock import Clock
from roottrading.domain import Balance, Candle, Order, Tick
from roottrading.exchange.base import ExchangeUpdate, OrderList
from roottrading.exchange.filters import SymbolRules
from roottrading.exchange.sim.adapter import SimExchange
from roottrading.exchange.sim.engine import SimEngine
from roottrading.exchange.sim.snapshot import restore, snapshot
from roottrading.store.repos_safety import SafetyStateRepo

PAPER_KEY = "paper_account"
log = structlog.get_logger(__name__)


class PaperAccount(SimExchange):
    """A SimExchange whose account survives restarts. Call `load()` before anything subscribes or trades."""

    def __init__(
        self,
        engine: SimEngine,
        clock: Clock | None,
        repo: SafetyStateRepo,
        key: str = PAPER_KEY,
        *,
        list_rules: Callable[[str], SymbolRules] | None = None,
    ) -> None:
        super().__init__(engine, clock)
        self.repo, self.key = repo, key
        #: rules of a stored symbol the engine was not built with (a pair the universe added before a restart)
        self.list_rules = list_rules
        self.dirty = False
        self.saves = 0
        self._unwatch = engine.subscribe(self._changed)

    def _changed(self, _update: ExchangeUpdate) -> None:
        self.dirty = True  # every order and balance change is announced by the engine

    async def load(self) -> bool:
        """Take back the stored account (True), or store the fresh one as the starting point (False)."""
        doc = await self.repo.get(self.key)
        if doc is None:
            self.dirty = True
            await self.flush()
            log.info("paper account created", balances=_totals(self.engine))
            return False
        rules = dict(self.engine.rules)
        if self.list_rules is not None:
            for sym in doc.get("market", {}):
                if sym not in rules:
                    rules[sym] = self.list_rules(sym)
        engine = restore(doc, rules, self.engine.config)
        self._unwatch()
        self.engine = engine
        self._unwatch = engine.subscribe(self._changed)
        log.info("paper account restored", balances=_totals(engine), open_orders=len(engine.open_orders()))
        return True

    async def flush(self) -> None:
        """Store the account if it changed since the last store (one atomic upsert)."""
        if not self.dirty:
            return
        self.dirty = False
        await self.repo.put(self.key, snapshot(self.engine), self.engine.now)
        self.saves += 1

    # every call that can change the account (time moving lets in-flight orders land) stores it before
    # returning, so what the trader learns is always already stored
    async def balances(self) -> dict[str, Balance]:
        try:
            return await super().balances()
        finally:
            await self.flush()

    async def place_order(self, **kwargs: Any) -> Order:
        try:
            return await super().place_order(**kwargs)
        finally:
            await self.flush()

    async def place_oco(self, **kwargs: Any) -> OrderList:
        try:
            return await super().place_oco(**kwargs)
        finally:
            await self.flush()

    async def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        try:
            return await super().cancel_order(symbol, client_order_id)
        finally:
            await self.flush()

    async def get_order(self, symbol: str, client_order_id: str) -> Order:
        try:
            return await super().get_order(symbol, client_order_id)
        finally:
            await self.flush()

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        try:
            return await super().open_orders(symbol)
        finally:
            await self.flush()

    async def on_tick(self, tick: Tick) -> None:
        await super().on_tick(tick)
        await self.flush()

    async def on_candle(self, candle: Candle) -> None:
        await super().on_candle(candle)
        await self.flush()


def _totals(engine: SimEngine) -> dict[str, str]:
    return {a: str(b.free + b.locked) for a, b in engine.balances().items() if b.free + b.locked != Decimal(0)}
