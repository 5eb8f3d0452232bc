"""What an exchange adapter remembers of the orders it placed and the fills it pushed, and the fan-out to
subscribers; shared by the native Binance adapter and the ccxt adapter.

Why apart from the transport: the same bookkeeping serves the order answers (fills pushed at once) and the
user-data stream or poller (changes found later); keeping it in one place is what makes a fill pushed twice
impossible (deduped by trade id) and a terminal order drop out of the tracking, for every adapter alike.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from typing import Any

from roottrading.domain import Fill, Order
from roottrading.exchange.base import ExchangeUpdate, UpdateCallback

MAX_KNOWN = 20_000  # exchange order id -> last state, oldest dropped first
MAX_SEEN = 100_000  # trade ids remembered for the dedupe


class OrderTracking:
    def __init__(self) -> None:
        self._callbacks: list[UpdateCallback] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tracked: dict[str, Order] = {}  # client id -> last known state of a non-terminal order
        self._known: dict[str, Order] = {}  # exchange order id -> last known state (bounded)
        self._seen_trades: set[tuple[str, str]] = set()
        self._seen_order: deque[tuple[str, str]] = deque()

    def _track(self, order: Order) -> None:
        if order.exchange_order_id is not None:
            self._known.pop(order.exchange_order_id, None)
            self._known[order.exchange_order_id] = order
            if len(self._known) > MAX_KNOWN:
                self._known.pop(next(iter(self._known)))
        if order.status.is_terminal:
            self._tracked.pop(order.client_order_id, None)
        else:
            self._tracked[order.client_order_id] = order

    def _seen(self, fill: Fill) -> bool:
        """True when this trade was pushed already; remembers it otherwise."""
        key = (fill.symbol, fill.trade_id)
        if key in self._seen_trades:
            return True
        self._seen_trades.add(key)
        self._seen_order.append(key)
        if len(self._seen_order) > MAX_SEEN:
            self._seen_trades.discard(self._seen_order.popleft())
        return False

    def _dispatch(self, update: ExchangeUpdate) -> None:
        for cb in list(self._callbacks):
            result = cb(update)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
