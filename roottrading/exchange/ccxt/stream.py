"""UserStream: the ccxt adapter's order, fill and balance updates over ccxt.pro's websocket watch methods
(`watch_orders`, `watch_my_trades`, `watch_balance`), where the exchange's ccxt class has them.

Why beside the poller and not instead of it: a stream can drop, and a message sent while it was down is gone.
So the adapter keeps its poller (adapter.CcxtExchange.poll_once) and this module only changes its pace:
- while the stream is up, the poller runs every `reconcile_interval_s` (a slow safety net), and once right
  after every (re)connect, so whatever happened while the stream was down is pushed;
- while it is down (dropped, refused, reconnecting), the poller runs at its normal interval;
- an exchange whose ccxt class has no `watchOrders`, or a stream refused for good (authentication, not
  supported), leaves the poller alone at its normal interval.
Updates pushed here are the poller's: fills deduped by trade id (tracking.OrderTracking), a final state
(canceled, expired, rejected) pushed once, balances pushed when they differ from the last ones pushed.

Reconnects: ccxt drops its websocket client when the server closes it; the next watch call dials again and
subscribes again (Binance spot: the WebSocket API's userDataStream.subscribe.signature). A drop after a
subscription that went through is dialled again after `retry_delay_s`; attempts that fail before subscribing
back off (doubling, at most 30 s).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import ccxt
import msgspec
import structlog

from roottrading.domain import Balance, Order, OrderStatus
from roottrading.exchange.base import BalanceUpdate, OrderUpdate
from roottrading.exchange.ccxt.convert import fill_from_ccxt, order_from_ccxt

if TYPE_CHECKING:
    from roottrading.exchange.ccxt.adapter import CcxtExchange

log = structlog.get_logger(__name__)

SUBSCRIBE_GRACE_S = 2.0  # exchanges other than Binance: no subscribe answer to wait for; assumed live after this
_FOR_GOOD = (ccxt.AuthenticationError, ccxt.PermissionDenied, ccxt.NotSupported, ccxt.BadRequest)
GIVE_UP_AFTER = 3  # refusals in a row (for good) before falling back to polling only


def has_user_stream(client: Any) -> bool:
    """True when the exchange's ccxt class can push order updates (the fills and balances are optional)."""
    has = getattr(client, "has", None) or {}
    return bool(has.get("watchOrders"))


class UserStream:
    """Runs the watch loops of one adapter, reconnecting; tells the adapter's poller when it is live."""

    def __init__(self, adapter: CcxtExchange, reconcile_interval_s: float, retry_delay_s: float = 0.5) -> None:
        self.adapter = adapter
        self.client: Any = adapter.client
        self.reconcile_interval_s = reconcile_interval_s
        self.retry_delay_s = retry_delay_s
        self.live = False  # subscribed and not known to be broken
        self.gave_up = False
        self.stats = {"connects": 0, "drops": 0, "orders": 0, "trades": 0, "balances": 0, "skipped": 0}
        self.on_change: Callable[[], None] = lambda: None  # the adapter's poller: wake up and re-read `live`

    def _set_live(self, live: bool) -> None:
        if self.live != live:
            self.live = live
            self.on_change()

    # ------------------------------------------------------------------ supervision
    async def run(self) -> None:
        """Sessions until refused for good; whatever ends it (cancelled, a bug) leaves the poller at full pace."""
        try:
            await self._sessions()
        finally:
            self._set_live(False)

    async def _sessions(self) -> None:
        refusals = 0
        attempt = 0
        while True:
            connects = self.stats["connects"]
            try:
                await self._session()
            except _FOR_GOOD as exc:
                refusals += 1
                log.warning("ccxt.user_stream_refused", exchange=self.adapter.id, error=repr(exc), refusals=refusals)
                if refusals >= GIVE_UP_AFTER:
                    self.gave_up = True
                    self._set_live(False)
                    log.error("ccxt.user_stream_gave_up", exchange=self.adapter.id, fallback="polling")
                    return
            except ccxt.BaseError as exc:  # dropped, timed out, exchange unavailable: dial again
                refusals = 0
                self.stats["drops"] += 1
                log.warning("ccxt.user_stream_dropped", exchange=self.adapter.id, error=repr(exc))
            self._set_live(False)
            # a drop after a subscription went through: dial again at once; failures to subscribe back off
            attempt = 0 if self.stats["connects"] > connects else attempt + 1
            await asyncio.sleep(min(30.0, self.retry_delay_s * 2 ** max(0, attempt - 1)))

    async def _session(self) -> None:
        """One connection: subscribe, reconcile once, then push until a watch call fails (raised)."""
        loops: list[Callable[[], Coroutine[Any, Any, None]]] = [self._orders]
        has = self.client.has
        if has.get("watchMyTrades"):
            loops.append(self._trades)
        if has.get("watchBalance"):
            loops.append(self._balances)
        tasks = [asyncio.create_task(fn(), name=f"ccxt:{self.adapter.id}:{fn.__name__}") for fn in loops]
        try:
            await self._subscribed(tasks)
            self.stats["connects"] += 1
            self._set_live(True)
            log.info("ccxt.user_stream_live", exchange=self.adapter.id, watching=[fn.__name__ for fn in loops])
            await self.adapter.reconcile()  # whatever happened before the subscription (or while it was down)
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                t.result()  # raises the watch call's error
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _subscribed(self, tasks: list[asyncio.Task[None]]) -> None:
        """Returns once the exchange confirmed the subscription (Binance spot: ccxt's authenticate() is the
        WebSocket API subscribe and its answer), or after a grace period elsewhere; raises a watch error."""
        if self.adapter.id == "binance":
            auth = asyncio.ensure_future(self.client.authenticate())
            done, _ = await asyncio.wait([auth, *tasks], return_when=asyncio.FIRST_COMPLETED)
            if auth not in done:
                auth.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await auth
            for t in done:
                t.result()
            return
        done, _ = await asyncio.wait(tasks, timeout=SUBSCRIBE_GRACE_S, return_when=asyncio.FIRST_EXCEPTION)
        for t in done:
            t.result()

    # ------------------------------------------------------------------ the watch loops
    def _symbol_id(self, unified: Any) -> str | None:
        for sid, u in self.adapter._unified.items():
            if u == unified:
                return sid
        return None

    def _order(self, o: dict[str, Any], symbol: str) -> Order:
        """The pushed state over what this adapter placed: the type, prices and client id it sent are kept (a
        websocket order carries less than a REST answer), the progress (status, filled, cost, time) is new."""
        cur = order_from_ccxt(o, symbol)
        known = self.adapter._known.get(cur.exchange_order_id or "")
        if known is None:
            return cur
        return msgspec.structs.replace(
            known,
            status=cur.status,
            executed_quantity=max(cur.executed_quantity, known.executed_quantity),
            cumulative_quote=max(cur.cumulative_quote, known.cumulative_quote),
            updated_at=max(cur.updated_at, known.updated_at),
        )

    def _push_fill(self, t: dict[str, Any], symbol: str, order: Order) -> None:
        fill = fill_from_ccxt(t, symbol, order.client_order_id)
        if not self.adapter._seen(fill):
            self.stats["trades"] += 1
            self.adapter._dispatch(OrderUpdate(time=fill.time, execution_type="TRADE", order=order, fill=fill))

    def _skip(self, kind: str, item: dict[str, Any], exc: Exception) -> None:
        """An update ccxt parsed into something unusable (no side, a non-number): not guessed; the next
        reconciliation poll reads the same order or fill over REST."""
        self.stats["skipped"] += 1
        log.warning(
            "ccxt.user_stream_bad_update", exchange=self.adapter.id, kind=kind, id=item.get("id"), error=repr(exc)
        )

    async def _orders(self) -> None:
        while True:
            for o in await self.client.watch_orders():
                try:
                    self._on_order(o)
                except (ValueError, TypeError, KeyError, InvalidOperation) as exc:
                    self._skip("order", o, exc)

    def _on_order(self, o: dict[str, Any]) -> None:
        ad = self.adapter
        symbol = self._symbol_id(o.get("symbol"))
        if symbol is None:
            return  # a market this adapter does not trade (not spot)
        cur = self._order(o, symbol)
        self.stats["orders"] += 1
        for t in o.get("trades") or []:  # ccxt keeps an order's fills with it where the event has them
            self._push_fill({**t, "side": t.get("side") or o.get("side")}, symbol, cur)
        before = ad._known.get(cur.exchange_order_id or "")
        final = cur.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED)
        if final and (before is None or before.status != cur.status):
            ad._dispatch(OrderUpdate(time=cur.updated_at, execution_type=cur.status.value, order=cur))
        ad._track(cur)

    async def _trades(self) -> None:
        """Fills where an order's own update does not carry them (deduped with the ones it does)."""
        while True:
            for t in await self.client.watch_my_trades():
                try:
                    self._on_trade(t)
                except (ValueError, TypeError, KeyError, InvalidOperation) as exc:
                    self._skip("trade", t, exc)

    def _on_trade(self, t: dict[str, Any]) -> None:
        symbol = self._symbol_id(t.get("symbol"))
        if symbol is None:
            return
        # the order as of this fill: ccxt's order cache (updated by the same event) before our own copy
        cache = getattr(getattr(self.client, "orders", None), "hashmap", None) or {}
        cached = (cache.get(t.get("symbol")) or {}).get(str(t.get("order")))
        known = self.adapter._known.get(str(t.get("order")))
        if cached is not None:
            self._push_fill(t, symbol, self._order(cached, symbol))
        elif known is not None:
            self._push_fill(t, symbol, known)
        # else: an order not seen yet; its own update (or the next poll) carries the fill

    async def _balances(self) -> None:
        ad = self.adapter
        while True:
            body = await self.client.watch_balance()
            free, used = body.get("free") or {}, body.get("used") or {}
            now = {
                a: Balance(asset=a, free=Decimal(str(free[a] or 0)), locked=Decimal(str(used.get(a) or 0)))
                for a in free
            }
            diff = tuple(b for a, b in now.items() if ad._balances.get(a) != b)
            if diff:
                ad._balances.update(now)
                self.stats["balances"] += 1
                ad._dispatch(BalanceUpdate(time=int(self.client.milliseconds()), balances=diff))
