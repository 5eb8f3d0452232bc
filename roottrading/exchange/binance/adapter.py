"""BinanceExchange: the Exchange port (roottrading.exchange.base) over Binance Spot's signed REST API and
its user-data stream. Works against binance.com, the spot testnet, and the local fake Binance server.

Why the recovery logic lives here: only the adapter knows that a request's answer was lost. When a new
order's outcome is unknown (timeout, dropped connection, 5xx), the adapter asks the exchange for the order
by its client id (`origClientOrderId`), a few times, spaced out. Found: it is returned as if the POST had
answered. Not found: `OrderNotFound` (an `OrderFateUnknown`) tells the caller it may resend with the SAME
client id. Query impossible: `OrderFateUnknown`; the caller's reconciliation asks again later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any

import msgspec
import structlog

from roottrading.domain import Balance, Fill, Order, OrderType, Side, TimeInForce
from roottrading.exchange.base import BalanceUpdate, OrderList, OrderUpdate, UpdateCallback
from roottrading.exchange.binance import trading as t
from roottrading.exchange.binance.rest_orders import (
    fills_from_full,
    order_from_rest,
    order_list_from_rest,
    trade_from_rest,
)
from roottrading.exchange.binance.signing import make_signer
from roottrading.exchange.binance.user_stream import BalanceDelta, UserDataStream, UserEvent
from roottrading.exchange.errors import InvalidSymbol, NoSuchOrder, OrderFateUnknown
from roottrading.exchange.fate import recover_order_fate
from roottrading.exchange.filters import SymbolRules, parse_exchange_info
from roottrading.exchange.tracking import OrderTracking

log = structlog.get_logger(__name__)


class BinanceExchange(OrderTracking):
    """Binance Spot behind the Exchange protocol. Secrets are held by the signer and never logged.

    `BinanceExchange(settings, clock=...)` (the trader's live factory) reads BINANCE_API_KEY,
    BINANCE_SECRET_KEY (a secret or an Ed25519 PEM), BINANCE_REST_URL, BINANCE_WS_URL, BINANCE_TESTNET."""

    def __init__(
        self,
        api_key: Any,
        api_secret: str | bytes | None = None,
        *,
        base_url: str | None = None,
        ws_url: str | None = None,
        testnet: bool = False,
        recv_window: int = 5000,
        timeout_s: float = 10.0,
        user_stream: bool = True,
        fate_query_attempts: int = 4,
        fate_query_delay_s: float = 0.5,
        clock: Any = None,
        **rest_options: Any,
    ) -> None:
        if not isinstance(api_key, str):  # a Settings object
            s = api_key
            api_secret = s.binance_secret_key.get_secret_value()
            testnet = testnet or bool(getattr(s, "binance_testnet", False))
            if not testnet:
                base_url = base_url or s.binance_rest_url
                ws_url = ws_url or s.binance_ws_url
            api_key = s.binance_api_key.get_secret_value()
        if not api_key or not api_secret:
            raise ValueError("BinanceExchange needs an API key and a secret (or an Ed25519 private key PEM)")
        base_url = base_url or (t.TESTNET_REST if testnet else t.MAINNET_REST)
        self.ws_url = ws_url or (t.TESTNET_WS if testnet else t.MAINNET_WS)
        self.rest = t.BinanceTradingRest(
            api_key,
            make_signer(api_secret),
            base_url=base_url,
            recv_window=recv_window,
            timeout_s=timeout_s,
            **rest_options,
        )
        self.clock = clock  # accepted for the factory's signature; signing always uses the wall clock
        # How long an order sent by any process may still reach the exchange: the HTTP timeout, or the signed
        # request's recvWindow (the exchange refuses it after that). The trader never re-sends a younger intent.
        self.send_timeout_s = max(timeout_s, recv_window / 1000)
        self.fate_query_attempts = fate_query_attempts
        self.fate_query_delay_s = fate_query_delay_s
        self._rules: dict[str, SymbolRules] | None = None
        OrderTracking.__init__(self)
        self._last_event_ms = 0
        self._stream: UserDataStream | None = None
        self._user_stream_enabled = user_stream
        self.stats = {"fate_unknown": 0, "recovered": 0, "not_found": 0, "resyncs": 0}

    def __repr__(self) -> str:
        return f"BinanceExchange({self.rest!r})"

    # ------------------------------------------------------------------ rules
    async def exchange_info(self, refresh: bool = False) -> dict[str, SymbolRules]:
        if self._rules is None or refresh:
            self._rules = parse_exchange_info(await self.rest.exchange_info())
        return dict(self._rules)

    async def symbol_rules(self, symbol: str) -> SymbolRules:
        rules = (await self.exchange_info()).get(symbol)
        if rules is None:
            raise InvalidSymbol()
        return rules

    # ------------------------------------------------------------------ prices
    async def price_at(self, symbol: str, time_ms: int) -> Decimal | None:
        """The symbol's price at `time_ms`: the close of the 1-minute kline holding that time (for the
        running minute, the latest trade), else the current ticker; None for a symbol Binance does not list.
        The trader values a third-asset fee (BNB) with it at the fill's time, even for a fill it learns of
        late (reconciliation after a restart). Public endpoints: weight 2 (klines) or 2 (ticker)."""
        minute = time_ms - time_ms % 60_000
        params = {"symbol": symbol, "interval": "1m", "startTime": minute, "limit": 1}
        try:
            rows = await self.rest.request("GET", "/api/v3/klines", params)
            if rows and int(rows[0][0]) == minute:
                return Decimal(str(rows[0][4]))
            body = await self.rest.request("GET", "/api/v3/ticker/price", {"symbol": symbol})
        except InvalidSymbol:
            return None
        return Decimal(str(body["price"])) if isinstance(body, dict) and "price" in body else None

    # ------------------------------------------------------------------ account
    async def balances(self) -> dict[str, Balance]:
        body = await self.rest.account()
        return {
            b["asset"]: Balance(asset=b["asset"], free=Decimal(b["free"]), locked=Decimal(b["locked"]))
            for b in body.get("balances", [])
        }

    # ------------------------------------------------------------------ orders
    async def _order_params(
        self,
        *,
        symbol: str,
        side: Side,
        type: OrderType,
        client_order_id: str,
        quantity: Decimal | None,
        quote_quantity: Decimal | None,
        price: Decimal | None,
        stop_price: Decimal | None,
        time_in_force: TimeInForce,
    ) -> dict[str, Any]:
        """Binance parameters with price/quantity rounded onto the symbol's grid (never up)."""
        rules = await self.symbol_rules(symbol)
        p: dict[str, Any] = {
            "symbol": symbol,
            "side": Side(side).value,
            "type": OrderType(type).value,
            "newClientOrderId": client_order_id,
        }
        market = OrderType(type) is OrderType.MARKET
        if quantity is not None:
            p["quantity"] = rules.round_quantity(quantity, market=market).normalize()
        if quote_quantity is not None:
            exp = Decimal(1).scaleb(-rules.quote_precision)
            p["quoteOrderQty"] = quote_quantity.quantize(exp, ROUND_DOWN).normalize()
        if price is not None:
            p["price"] = rules.round_price(price).normalize()
        if stop_price is not None:
            p["stopPrice"] = rules.round_price(stop_price).normalize()
        if OrderType(type) in (OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT):
            p["timeInForce"] = TimeInForce(time_in_force).value
        return p

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
        params = await self._order_params(
            symbol=symbol,
            side=side,
            type=type,
            client_order_id=client_order_id,
            quantity=quantity,
            quote_quantity=quote_quantity,
            price=price,
            stop_price=stop_price,
            time_in_force=time_in_force,
        )
        self._ensure_stream()
        try:
            body = await self.rest.new_order(params)
        except t.FateUnknown as exc:
            order = await self._recover(symbol, client_order_id, exc.cause)
            self._track(order)
            return order
        order = order_from_rest(body)
        self._track(order)
        for f in fills_from_full(body):  # pushed now; the stream's copy of the same trade is deduped
            if not self._seen(f):
                self._dispatch(OrderUpdate(time=f.time, execution_type="TRADE", order=order, fill=f))
        return order

    async def _recover(self, symbol: str, client_order_id: str, cause: str) -> Order:
        """Ask for the order by client id after an unknown outcome (see the module docstring and fate.py)."""

        async def query() -> Order:
            return order_from_rest(await self.rest.query_order(symbol, client_order_id))

        return await recover_order_fate(
            query,
            symbol=symbol,
            client_order_id=client_order_id,
            cause=cause,
            attempts=self.fate_query_attempts,
            delay_s=self.fate_query_delay_s,
            stats=self.stats,
            source="binance",
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
        rules = await self.symbol_rules(symbol)
        params = {
            "symbol": symbol,
            "side": Side(side).value,
            "quantity": rules.round_quantity(quantity).normalize(),
            "price": rules.round_price(price).normalize(),
            "stopPrice": rules.round_price(stop_price).normalize(),
            "stopLimitPrice": rules.round_price(stop_limit_price).normalize(),
            "stopLimitTimeInForce": "GTC",
            "listClientOrderId": list_client_order_id,
            "limitClientOrderId": limit_client_order_id,
            "stopClientOrderId": stop_client_order_id,
            "newOrderRespType": "FULL",
        }
        self._ensure_stream()
        try:
            body = await self.rest.request("POST", "/api/v3/order/oco", params, signed=True)
        except t.FateUnknown as exc:
            leg = await self._recover(symbol, limit_client_order_id, exc.cause)
            raise OrderFateUnknown(
                symbol, list_client_order_id, f"OCO sent, leg {leg.client_order_id} is {leg.status.value}"
            ) from None
        olist = order_list_from_rest(body)
        for o in olist.orders:
            self._track(o)
        return olist

    async def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        try:
            order = order_from_rest(await self.rest.cancel_order(symbol, client_order_id))
        except t.FateUnknown as exc:
            order = await self._recover(symbol, client_order_id, exc.cause)
            if order.status.value in ("NEW", "PARTIALLY_FILLED"):
                raise OrderFateUnknown(symbol, client_order_id, f"cancel {exc.cause}; order still open") from None
        self._track(order)
        return order

    async def get_order(self, symbol: str, client_order_id: str) -> Order:
        return order_from_rest(await self.rest.query_order(symbol, client_order_id))

    async def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [order_from_rest(o) for o in await self.rest.open_orders(symbol)]

    async def all_orders(self, symbol: str) -> list[Order]:
        """Every order of the symbol (Binance keeps them; the fake keeps them all), oldest first."""
        out: list[Order] = []
        from_id: int | None = None
        while True:
            page = await self.rest.all_orders(symbol, order_id=from_id, limit=1000)
            out.extend(order_from_rest(o) for o in page if from_id is None or int(o["orderId"]) >= from_id)
            if len(page) < 1000:
                return out
            from_id = int(page[-1]["orderId"]) + 1

    async def my_trades(
        self,
        symbol: str,
        *,
        start_time: int | None = None,
        end_time: int | None = None,
        from_id: int | None = None,
        limit: int = 500,
    ) -> list[Fill]:
        rows = await self.rest.my_trades(symbol, start_time=start_time, end_time=end_time, from_id=from_id, limit=limit)
        out = []
        for r in rows:  # Binance's rows have no client id: take it from orders this adapter has seen
            known = self._known.get(str(r["orderId"]))
            out.append(trade_from_rest(r, known.client_order_id if known is not None else ""))
        return out

    # ------------------------------------------------------------------ updates
    def subscribe_updates(self, callback: UpdateCallback) -> Callable[[], None]:
        self._callbacks.append(callback)
        self._ensure_stream()

        def unsubscribe() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unsubscribe

    def _ensure_stream(self) -> None:
        if self._stream is not None or not self._user_stream_enabled or not self._callbacks:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # started by the next call made from inside the loop
        self._stream = UserDataStream(
            self.ws_url,
            create_key=self.rest.create_listen_key,
            keepalive=self.rest.keepalive_listen_key,
            on_event=self._on_event,
            on_connected=self._on_connected,
        )
        self._stream.start()

    async def wait_stream_connected(self, timeout_s: float = 10.0) -> None:
        """Wait until the user-data WebSocket is open (tests, start-up)."""
        self._ensure_stream()
        if self._stream is None:
            raise RuntimeError("no user-data stream (no subscriber, or user_stream=False)")
        await asyncio.wait_for(self._stream.connected.wait(), timeout_s)

    async def _on_event(self, event: UserEvent) -> None:
        if isinstance(event, OrderUpdate):
            self._last_event_ms = max(self._last_event_ms, event.time)
            if event.fill is not None and self._seen(event.fill):
                event = OrderUpdate(
                    time=event.time,
                    execution_type=event.execution_type,
                    order=event.order,
                    order_list_id=event.order_list_id,
                )
            self._track(event.order)
            self._dispatch(event)
        elif isinstance(event, BalanceUpdate):
            self._dispatch(event)
        elif isinstance(event, BalanceDelta):
            bals = await self.balances()
            b = bals.get(event.asset, Balance(asset=event.asset, free=Decimal(0), locked=Decimal(0)))
            self._dispatch(BalanceUpdate(time=event.time, balances=(b,)))

    async def _on_connected(self, reconnect: bool) -> None:
        if reconnect:
            await self.resync()

    async def resync(self) -> None:
        """After a stream drop: push what was missed. Fills of tracked orders come from myTrades (deduped by
        trade id), final states of tracked orders no longer open from a query, then all balances."""
        self.stats["resyncs"] += 1
        open_now = {o.client_order_id: o for o in await self.open_orders()}
        symbols = {o.symbol for o in self._tracked.values()} | {o.symbol for o in open_now.values()}
        since = (self._last_event_ms or 0) - 60_000
        for symbol in sorted(symbols):
            for f in await self.my_trades(symbol, start_time=max(since, 0) or None, limit=1000):
                state = self._known.get(f.order_id)
                if state is None or self._seen(f):
                    continue  # not placed through this adapter: the owner's reconciliation reads myTrades
                state = open_now.get(state.client_order_id) or state
                if not f.client_order_id:
                    f = Fill(**{**msgspec.structs.asdict(f), "client_order_id": state.client_order_id})
                self._dispatch(OrderUpdate(time=f.time, execution_type="TRADE", order=state, fill=f))
        for cid, known in list(self._tracked.items()):
            current = open_now.get(cid)
            if current is None:
                try:
                    current = await self.get_order(known.symbol, cid)
                except NoSuchOrder:
                    continue
            exec_type = {
                "CANCELED": "CANCELED",
                "EXPIRED": "EXPIRED",
                "REJECTED": "REJECTED",
                "FILLED": "TRADE",
                "PARTIALLY_FILLED": "TRADE",
            }.get(current.status.value, "NEW")
            self._track(current)
            self._dispatch(OrderUpdate(time=current.updated_at, execution_type=exec_type, order=current))
        bals = await self.balances()
        self._dispatch(BalanceUpdate(time=0, balances=tuple(bals.values())))

    async def close(self) -> None:
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.rest.aclose()
