"""CcxtExchange: the Exchange port (roottrading.exchange.base) over ccxt's async REST client, for any of the
exchanges ccxt unifies (`EXCHANGE=ccxt:<id>`; `EXCHANGE=binance` keeps the native adapter).

- Rules (tick, lot, minimums) come from ccxt's markets (convert.rules_from_market); quantities and prices are
  rounded on that grid in Decimal and handed to ccxt as decimal strings, never floats.
- Errors are ccxt's, mapped to the port's (errors.py). A new order or a cancel whose outcome is unknown
  (timeout, dropped connection, 5xx) is looked up by client order id, as the native adapter does: found, it
  is returned; not found, `OrderNotFound` (resend with the same id); lookup impossible, `OrderFateUnknown`.
- Updates: where the exchange's ccxt.pro class has `watchOrders` (and `user_stream="auto"`), they come over
  its websocket (stream.py: watch_orders / watch_my_trades / watch_balance) and the poller below only
  reconciles, every `reconcile_interval_s` and after each (re)connect. Otherwise, or while the stream is
  down, the orders this adapter placed are polled every `poll_interval_s` (default 1 s): state changes and
  new fills (from fetch_my_trades, deduped by trade id) are pushed to the subscribers, then the balances
  that changed. Fills in an order's answer (Binance's FULL response) are pushed at once.
- OCO: only where the exchange has Binance's endpoint (ccxt's implicit `privatePostOrderOco`); elsewhere
  `OrderTypeNotSupported`.

What is verified: Binance through ccxt's binance class against the project's fake Binance (tests/exchange_ccxt).
Every other exchange is only as good as ccxt's unification of it (docs/exchanges.md).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any
from urllib.parse import urlsplit

import ccxt
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import msgspec
import structlog

from roottrading.domain import Balance, Fill, Order, OrderType, Side, TimeInForce
from roottrading.exchange.base import BalanceUpdate, OrderList, OrderUpdate, UpdateCallback
from roottrading.exchange.binance.rest_orders import order_list_from_rest
from roottrading.exchange.ccxt.convert import fill_from_ccxt, order_from_ccxt, rules_from_market
from roottrading.exchange.ccxt.errors import is_fate_unknown, port_error
from roottrading.exchange.ccxt.ratelimit import fit_to_published_limit
from roottrading.exchange.ccxt.stream import UserStream, has_user_stream
from roottrading.exchange.errors import (
    Disconnected,
    ExchangeError,
    InvalidSymbol,
    InvalidTimestamp,
    NoSuchOrder,
    OrderFateUnknown,
    OrderTypeNotSupported,
    RateLimited,
    UnknownError,
)
from roottrading.exchange.fate import recover_order_fate
from roottrading.exchange.filters import SymbolRules
from roottrading.exchange.tracking import OrderTracking

log = structlog.get_logger(__name__)

SPOT_OPTIONS: dict[str, Any] = {
    "defaultType": "spot",
    "fetchMarkets": {"types": ["spot"]},  # no futures/options market lists: the platform trades spot
    "warnOnFetchOpenOrdersWithoutSymbol": False,
}
_CCXT_TYPE = {OrderType.MARKET: "market", OrderType.LIMIT: "limit"}
READ_ATTEMPTS = 4
REFUSED_RETRIES = 3  # a write refused before execution (-1021 timestamp outside recvWindow): sent again
_TRANSIENT = (InvalidTimestamp, Disconnected, UnknownError, RateLimited)


def point_urls_at(urls: Any, base: str) -> Any:
    """Every API URL of a ccxt exchange moved to `base` (scheme://host:port), keeping each path: the way to
    aim a ccxt client at a local simulator."""
    if isinstance(urls, str):
        return base.rstrip("/") + urlsplit(urls).path
    if isinstance(urls, dict):
        return {k: point_urls_at(v, base) for k, v in urls.items()}
    return urls


class CcxtExchange(OrderTracking):
    """Any ccxt exchange behind the Exchange protocol. Keys are held by the ccxt client and never logged."""

    def __init__(
        self,
        exchange_id: str,
        *,
        api_key: str,
        secret: str,
        password: str | None = None,
        rest_url: str | None = None,
        options: dict[str, Any] | None = None,
        poll_interval_s: float = 1.0,
        user_stream: str = "auto",
        reconcile_interval_s: float = 30.0,
        fate_query_attempts: int = 4,
        fate_query_delay_s: float = 0.5,
        timeout_s: float = 10.0,
        clock: Any = None,
    ) -> None:
        cls = getattr(ccxt_async, exchange_id, None)
        if cls is None or exchange_id not in ccxt_async.exchanges:
            raise ValueError(f"ccxt has no exchange {exchange_id!r}")
        if user_stream not in ("auto", "poll"):
            raise ValueError(f"user_stream must be 'auto' or 'poll', not {user_stream!r}")
        if user_stream == "auto" and exchange_id in ccxt_pro.exchanges:
            cls = getattr(ccxt_pro, exchange_id)  # the same REST methods, plus the websocket watch* ones
        config: dict[str, Any] = {
            "apiKey": api_key,
            "secret": secret,
            "timeout": int(timeout_s * 1000),
            "options": {**SPOT_OPTIONS, **(options or {})},
        }
        if password:
            config["password"] = password
        self.client: Any = cls(config)
        if rest_url:
            self.client.urls["api"] = point_urls_at(self.client.urls["api"], rest_url)
        self.id = exchange_id
        self._default_rate_limit_ms = float(self.client.rateLimit)
        self.published_weight_per_minute: float | None = None
        self.clock = clock
        self.poll_interval_s = poll_interval_s
        self.fate_query_attempts = fate_query_attempts
        self.fate_query_delay_s = fate_query_delay_s
        self._rules: dict[str, SymbolRules] | None = None
        self._unified: dict[str, str] = {}  # exchange id (BTCUSDT) -> ccxt symbol (BTC/USDT)
        OrderTracking.__init__(self)
        self._poller: asyncio.Task[None] | None = None
        self._poll_lock = asyncio.Lock()  # the poller's and the stream's reconciliations never interleave
        self._wake = asyncio.Event()  # the stream went up or down: the poller re-reads its pace at once
        self._balances: dict[str, Balance] = {}
        self.reconcile_interval_s = reconcile_interval_s
        self.stream: UserStream | None = None
        self._streamer: asyncio.Task[None] | None = None
        if user_stream == "auto" and has_user_stream(self.client):
            self.stream = UserStream(self, reconcile_interval_s)
            self.stream.on_change = self._wake.set
        self.stats = {"fate_unknown": 0, "recovered": 0, "not_found": 0, "polls": 0, "poll_errors": 0}

    def __repr__(self) -> str:
        return f"CcxtExchange({self.id!r})"

    async def _call(self, fn: Callable[..., Awaitable[Any]], *args: Any, **kw: Any) -> Any:
        """A read (no side effect): retried on a transient failure (no answer, 5xx, -1021, rate limit), as the
        native client retries its GETs; any other failure is raised as the port's error at once."""
        for attempt in range(READ_ATTEMPTS):
            try:
                return await fn(*args, **kw)
            except ccxt.BaseError as exc:
                err = port_error(exc)
                if attempt == READ_ATTEMPTS - 1 or not (is_fate_unknown(exc) or isinstance(err, _TRANSIENT)):
                    raise err from None
                await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    # ------------------------------------------------------------------ rules
    async def exchange_info(self, refresh: bool = False) -> dict[str, SymbolRules]:
        if self._rules is None or refresh:
            markets = await self._call(self.client.load_markets, refresh)
            spot = [m for m in markets.values() if m.get("spot")]
            self._unified = {str(m["id"]): str(m["symbol"]) for m in spot}
            self._rules = {str(m["id"]): rules_from_market(m, self.client.precisionMode) for m in spot}
            if spot:  # ccxt's throttle spends the budget the exchange publishes, not a fixed model (ratelimit.py)
                self.published_weight_per_minute = await self._call(
                    fit_to_published_limit, self.client, self._default_rate_limit_ms, str(spot[0]["id"])
                )
        return dict(self._rules)

    async def symbol_rules(self, symbol: str) -> SymbolRules:
        rules = (await self.exchange_info()).get(symbol)
        if rules is None:
            raise InvalidSymbol()
        return rules

    async def _sym(self, symbol: str) -> str:
        await self.symbol_rules(symbol)
        return self._unified[symbol]

    # ------------------------------------------------------------------ account
    async def balances(self) -> dict[str, Balance]:
        body = await self._call(self.client.fetch_balance)
        out = {}
        for asset, free in (body.get("free") or {}).items():
            used = (body.get("used") or {}).get(asset)
            out[asset] = Balance(asset=asset, free=Decimal(str(free or 0)), locked=Decimal(str(used or 0)))
        return out

    # ------------------------------------------------------------------ orders
    async def _request(
        self,
        symbol: str,
        type: OrderType,
        client_order_id: str,
        quantity: Decimal | None,
        quote_quantity: Decimal | None,
        price: Decimal | None,
        stop_price: Decimal | None,
        time_in_force: TimeInForce,
    ) -> tuple[str, str | None, str | None, dict[str, Any]]:
        """(ccxt type, amount, price, params), amounts and prices rounded on the grid as decimal strings."""
        rules = await self.symbol_rules(symbol)
        otype = OrderType(type)
        params: dict[str, Any] = {"clientOrderId": client_order_id}
        amount = None
        if quantity is not None:
            amount = str(rules.round_quantity(quantity, market=otype is OrderType.MARKET).normalize())
        if quote_quantity is not None:
            params["cost"] = str(quote_quantity.quantize(Decimal(1).scaleb(-rules.quote_precision), ROUND_DOWN))
        px = str(rules.round_price(price).normalize()) if price is not None else None
        if stop_price is not None:
            key = "takeProfitPrice" if otype is OrderType.TAKE_PROFIT_LIMIT else "stopLossPrice"
            params[key] = str(rules.round_price(stop_price).normalize())
        if otype is OrderType.LIMIT_MAKER:
            params["postOnly"] = True
        if otype is not OrderType.MARKET and otype is not OrderType.LIMIT_MAKER:
            params["timeInForce"] = TimeInForce(time_in_force).value
        return _CCXT_TYPE.get(otype, "limit"), amount, px, params

    async def place_order(
        self,
        *,
        symbol: str,
        side: Side,
        type: OrderType,
        client_order_id: str,
        quantity: Decimal | None = None,
        quote_quantity: Decimal | None = None,
        price: Decimal | None = None,
        stop_price: Decimal | None = None,
        time_in_force: TimeInForce = TimeInForce.GTC,
    ) -> Order:
        unified = await self._sym(symbol)
        ctype, amount, px, params = await self._request(
            symbol, type, client_order_id, quantity, quote_quantity, price, stop_price, time_in_force
        )
        self._ensure_poller()
        for attempt in range(REFUSED_RETRIES + 1):
            try:
                body = await self.client.create_order(unified, ctype, Side(side).value.lower(), amount, px, params)
                break
            except ccxt.BaseError as exc:
                if not is_fate_unknown(exc):
                    err = port_error(exc)
                    if isinstance(err, InvalidTimestamp) and attempt < REFUSED_RETRIES:
                        continue  # refused before execution: the same order again, same client id
                    raise err from None
                order = await self._recover(symbol, client_order_id, exc.__class__.__name__)
                self._track(order)
                return order
        order = order_from_ccxt(body, symbol)
        if not order.client_order_id:
            order.client_order_id = client_order_id
        self._track(order)
        for t in body.get("trades") or []:  # pushed now; the poller's copy of the same trade is deduped
            # Binance's FULL `fills` have no side and no time (ccxt leaves them None): the order's own
            f = fill_from_ccxt(
                {
                    **t,
                    "order": t.get("order") or body.get("id"),
                    "side": t.get("side") or Side(side).value.lower(),
                    "timestamp": t.get("timestamp") or order.updated_at,
                },
                symbol,
                client_order_id,
            )
            if not self._seen(f):
                self._dispatch(OrderUpdate(time=f.time, execution_type="TRADE", order=order, fill=f))
        return order

    async def _recover(self, symbol: str, client_order_id: str, cause: str) -> Order:
        """Ask for the order by client id after an unknown outcome (see the module docstring and fate.py)."""
        return await recover_order_fate(
            lambda: self.get_order(symbol, client_order_id),
            symbol=symbol,
            client_order_id=client_order_id,
            cause=cause,
            attempts=self.fate_query_attempts,
            delay_s=self.fate_query_delay_s,
            stats=self.stats,
            source="ccxt",
        )

    async def place_oco(
        self,
        *,
        symbol: str,
        side: Side,
        quantity: Decimal,
        price: Decimal,
        stop_price: Decimal,
        stop_limit_price: Decimal,
        list_client_order_id: str,
        limit_client_order_id: str,
        stop_client_order_id: str,
    ) -> OrderList:
        endpoint = getattr(self.client, "privatePostOrderOco", None)
        if endpoint is None:
            raise OrderTypeNotSupported(f"{self.id} has no OCO endpoint through ccxt")
        rules = await self.symbol_rules(symbol)
        params = {
            "symbol": symbol,
            "side": Side(side).value,
            "quantity": str(rules.round_quantity(quantity).normalize()),
            "price": str(rules.round_price(price).normalize()),
            "stopPrice": str(rules.round_price(stop_price).normalize()),
            "stopLimitPrice": str(rules.round_price(stop_limit_price).normalize()),
            "stopLimitTimeInForce": "GTC",
            "listClientOrderId": list_client_order_id,
            "limitClientOrderId": limit_client_order_id,
            "stopClientOrderId": stop_client_order_id,
            "newOrderRespType": "FULL",
        }
        self._ensure_poller()
        try:
            body = await endpoint(params)
        except ccxt.BaseError as exc:
            if not is_fate_unknown(exc):
                raise port_error(exc) from None
            leg = await self._recover(symbol, limit_client_order_id, type(exc).__name__)
            raise OrderFateUnknown(
                symbol, list_client_order_id, f"OCO sent, leg {leg.client_order_id} is {leg.status.value}"
            ) from None
        olist = order_list_from_rest(body)
        for o in olist.orders:
            self._track(o)
        return olist

    def _id_of(self, client_order_id: str) -> str:
        known = self._tracked.get(client_order_id)
        return known.exchange_order_id or "" if known is not None else ""

    async def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        unified = await self._sym(symbol)
        params = {"clientOrderId": client_order_id}
        for attempt in range(REFUSED_RETRIES + 1):
            try:
                body = await self.client.cancel_order(self._id_of(client_order_id), unified, params)
                order = order_from_ccxt(body, symbol)
                break
            except ccxt.BaseError as exc:
                if not is_fate_unknown(exc):
                    err = port_error(exc, cancel=True)
                    if isinstance(err, InvalidTimestamp) and attempt < REFUSED_RETRIES:
                        continue
                    raise err from None
                order = await self._recover(symbol, client_order_id, type(exc).__name__)
                if not order.status.is_terminal:
                    raise OrderFateUnknown(symbol, client_order_id, "cancel unanswered; order still open") from None
                break
        self._track(order)
        return order

    async def get_order(self, symbol: str, client_order_id: str) -> Order:
        unified = await self._sym(symbol)
        params = {"clientOrderId": client_order_id}
        body = await self._call(self.client.fetch_order, self._id_of(client_order_id), unified, params)
        order = order_from_ccxt(body, symbol)
        if not order.client_order_id:
            order.client_order_id = client_order_id
        return order

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        await self.exchange_info()
        unified = await self._sym(symbol) if symbol else None
        rows = await self._call(self.client.fetch_open_orders, unified)
        by_unified = {v: k for k, v in self._unified.items()}
        return [order_from_ccxt(o, by_unified.get(o.get("symbol"), symbol or "")) for o in rows]

    async def my_trades(
        self,
        symbol: str,
        *,
        start_time: int | None = None,
        end_time: int | None = None,
        from_id: int | None = None,
        limit: int = 500,
    ) -> list[Fill]:
        unified = await self._sym(symbol)
        params: dict[str, Any] = {}
        if self.id == "binance":  # Binance's own paging parameters (ccxt passes them through)
            if end_time is not None:
                params["endTime"] = end_time
            if from_id is not None:
                params["fromId"] = from_id
        rows = await self._call(self.client.fetch_my_trades, unified, start_time, limit, params)
        out = []
        for r in rows:
            if end_time is not None and int(r.get("timestamp") or 0) > end_time:
                continue
            known = self._known.get(str(r.get("order")))
            out.append(fill_from_ccxt(r, symbol, known.client_order_id if known is not None else ""))
        return out

    # ------------------------------------------------------------------ updates (polling)
    def subscribe_updates(self, callback: UpdateCallback) -> Callable[[], None]:
        self._callbacks.append(callback)
        self._ensure_poller()

        def unsubscribe() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unsubscribe

    def _ensure_poller(self) -> None:
        if self._poller is not None or not self._callbacks:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # started by the next call made from inside the loop
        self._poller = asyncio.create_task(self._poll_loop(), name=f"ccxt:{self.id}:poll")
        if self.stream is not None:
            self._streamer = asyncio.create_task(self.stream.run(), name=f"ccxt:{self.id}:user-stream")

    def poll_pace_s(self) -> float:
        """The poller's interval now: slow while the user stream is live, `poll_interval_s` otherwise."""
        live = self.stream is not None and self.stream.live
        return max(self.reconcile_interval_s, self.poll_interval_s) if live else self.poll_interval_s

    async def _poll_loop(self) -> None:
        while True:
            # not asyncio.wait_for: on 3.11 it can swallow the cancel of close() when the wake-up lands with it
            waiter = asyncio.ensure_future(self._wake.wait())
            try:
                done, _ = await asyncio.wait({waiter}, timeout=self.poll_pace_s())
            finally:
                waiter.cancel()
            if done:
                self._wake.clear()
                continue  # the stream went up or down: sleep again at the new pace (it reconciles itself)
            await self.reconcile()

    async def reconcile(self) -> None:
        """One poll; a failure is logged and counted (the next poll tries again)."""
        try:
            await self.poll_once()
        except (ExchangeError, OSError) as exc:
            self.stats["poll_errors"] += 1
            log.warning("ccxt.poll_failed", exchange=self.id, error=repr(exc))

    async def poll_once(self) -> None:
        """Push what changed since the last poll (see _poll_changes); never two at once."""
        async with self._poll_lock:
            await self._poll_changes()

    async def _poll_changes(self) -> None:
        """Push what changed since the last poll. Per symbol with orders placed here and not final: one open
        orders request; only when one of them filled more or is no longer open, its trades (since the oldest
        such order) and a query of each order no longer open; then, only after a change, the balances. A quiet
        poll costs one request per symbol traded, whatever the number of orders resting (ccxt's rate limiter
        counts Binance's weights: trades and balances weigh 20, open orders 6)."""
        self.stats["polls"] += 1
        by_symbol: dict[str, list[Order]] = {}
        for o in self._tracked.values():
            by_symbol.setdefault(o.symbol, []).append(o)
        changed_any = False
        for symbol, tracked in by_symbol.items():
            open_now = {o.client_order_id: o for o in await self.open_orders(symbol)}
            moved = [
                k
                for k in tracked
                if (cur := open_now.get(k.client_order_id)) is None or cur.executed_quantity > k.executed_quantity
            ]
            if not moved:
                continue
            changed_any = True
            current: dict[str, Order] = {}
            for known in moved:
                cur = open_now.get(known.client_order_id)
                if cur is None:
                    try:
                        cur = await self.get_order(symbol, known.client_order_id)
                    except NoSuchOrder:
                        continue
                current[known.exchange_order_id or known.client_order_id] = cur
            since = min((o.created_at for o in moved if o.created_at), default=0)
            for f in await self.my_trades(symbol, start_time=since or None, limit=1000):
                cur = current.get(f.order_id)
                if cur is None or self._seen(f):
                    continue  # seen, or not an order that moved (the owner's reconciliation reads myTrades)
                f = msgspec.structs.replace(f, client_order_id=cur.client_order_id)
                self._dispatch(OrderUpdate(time=f.time, execution_type="TRADE", order=cur, fill=f))
            for known in moved:
                cur = current.get(known.exchange_order_id or known.client_order_id)
                if cur is None:
                    continue
                if cur.status != known.status and cur.status.value in ("CANCELED", "EXPIRED", "REJECTED"):
                    self._dispatch(OrderUpdate(time=cur.updated_at, execution_type=cur.status.value, order=cur))
                self._track(cur)
        if changed_any or not self._balances:
            bals = await self.balances()
            diff = tuple(b for a, b in bals.items() if self._balances.get(a) != b)
            self._balances = bals
            if diff:
                self._dispatch(BalanceUpdate(time=int(self.client.milliseconds()), balances=diff))

    async def close(self) -> None:
        for task in (self._streamer, self._poller):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._poller = self._streamer = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.client.close()
