"""CcxtExchange (EXCHANGE=ccxt:binance) against the fake Binance, through ccxt's own binance class.

Spot-only options, every API URL pointed at the simulator; the calls are the ones the trader makes on the
port: rules, balances, place (market, limit, quote-quantity), query and cancel by client id, open orders,
fills with their client ids, pushed updates, errors mapped to the port's, unknown outcomes recovered by
client id without a duplicate.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from roottrading.domain import OrderStatus, OrderType, Side
from roottrading.exchange.base import BalanceUpdate, OrderUpdate
from roottrading.exchange.ccxt.adapter import CcxtExchange
from roottrading.exchange.errors import (
    CancelRejected,
    InsufficientBalance,
    InvalidMessage,
    InvalidSymbol,
    NoSuchOrder,
    OrderNotFound,
)
from roottrading.exchange.fake_binance.rest import symbol_info
from roottrading.exchange.filters import SymbolRules
from tests.binance_trading.conftest import API_KEY, API_SECRET, Server, fake_binance  # noqa: F401 (fixture)


def ccxt_exchange(srv: Server, **kw: Any) -> CcxtExchange:
    kw.setdefault("poll_interval_s", 0.1)
    return CcxtExchange("binance", api_key=API_KEY, secret=API_SECRET, rest_url=srv.url, **kw)


async def wait_for(pred: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.02)


async def test_rules_come_from_ccxt_markets_and_match_the_exchange(fake_binance) -> None:  # noqa: F811
    async with fake_binance(start_paused=True) as srv:
        ex = ccxt_exchange(srv)
        try:
            rules = await ex.exchange_info()
            native = SymbolRules.from_binance(symbol_info("BTCUSDT", srv.state.market.series["BTCUSDT"]))
            r = rules["BTCUSDT"]
            assert list(rules) == ["BTCUSDT"] and (r.base_asset, r.quote_asset) == ("BTC", "USDT")
            assert (r.tick_size, r.step_size) == (native.tick_size, native.step_size)
            assert (r.min_qty, r.min_notional, r.min_price) == (native.min_qty, native.min_notional, native.min_price)
            with pytest.raises(InvalidSymbol):
                await ex.symbol_rules("NOPEUSDT")
        finally:
            await ex.close()


async def test_order_path_as_the_trader_uses_the_port(fake_binance) -> None:  # noqa: F811
    async with fake_binance(start_paused=True) as srv:
        ex = ccxt_exchange(srv)
        engine = srv.state.trading.engine
        ups: list[Any] = []
        ex.subscribe_updates(ups.append)
        try:
            before = await ex.balances()
            assert (before["BTC"].free, before["USDT"].free) == (Decimal(1), Decimal(10000))
            last = engine.last_price("BTCUSDT")
            o = await ex.place_order(
                symbol="BTCUSDT",
                side=Side.BUY,
                type=OrderType.LIMIT,
                client_order_id="cx-1",
                quantity=Decimal("0.0123456"),
                price=last / 2 + Decimal("0.0049"),
            )  # off the grid: rounded down before sending, in Decimal
            assert o.status is OrderStatus.NEW and o.quantity == Decimal("0.01234") and o.client_order_id == "cx-1"
            assert o.price == (last / 2 + Decimal("0.0049")).quantize(Decimal("0.01"), rounding="ROUND_DOWN")
            assert [x.client_order_id for x in await ex.open_orders("BTCUSDT")] == ["cx-1"]
            assert [x.client_order_id for x in await ex.open_orders()] == ["cx-1"]

            m = await ex.place_order(
                symbol="BTCUSDT", side=Side.BUY, type=OrderType.MARKET, client_order_id="cx-2", quantity=Decimal("0.01")
            )
            assert m.status is OrderStatus.FILLED and m.executed_quantity == Decimal("0.01")
            fills = [u.fill for u in ups if isinstance(u, OrderUpdate) and u.fill is not None]
            assert len(fills) == 1 and fills[0].client_order_id == "cx-2" and fills[0].commission_asset == "BTC"
            (record,) = engine.my_trades("BTCUSDT")
            assert fills[0].trade_id == str(record.trade_id) and fills[0].price == record.price

            q = await ex.place_order(
                symbol="BTCUSDT",
                side=Side.BUY,
                type=OrderType.MARKET,
                client_order_id="cx-3",
                quote_quantity=Decimal(50),
            )
            assert q.status is OrderStatus.FILLED and q.cumulative_quote <= Decimal(50)

            got = await ex.get_order("BTCUSDT", "cx-1")
            assert got.status is OrderStatus.NEW and got.exchange_order_id == o.exchange_order_id
            c = await ex.cancel_order("BTCUSDT", "cx-1")
            assert c.status is OrderStatus.CANCELED and c.client_order_id == "cx-1"
            assert await ex.open_orders("BTCUSDT") == []

            trades = await ex.my_trades("BTCUSDT")
            assert [t.client_order_id for t in trades] == ["cx-2", "cx-3"]
            after = await ex.balances()
            bought = sum((t.quantity - t.commission for t in trades), Decimal(0))
            assert after["BTC"].free == before["BTC"].free + bought
            assert after["USDT"].free == before["USDT"].free - sum((t.quote_quantity for t in trades), Decimal(0))

            # errors, mapped to the port's
            with pytest.raises(CancelRejected):
                await ex.cancel_order("BTCUSDT", "cx-1")
            with pytest.raises(NoSuchOrder):
                await ex.get_order("BTCUSDT", "never-sent")
            with pytest.raises(InvalidMessage):  # notional below 5 USDT
                await ex.place_order(
                    symbol="BTCUSDT",
                    side=Side.BUY,
                    type=OrderType.LIMIT,
                    client_order_id="cx-4",
                    quantity=Decimal("0.00001"),
                    price=last / 2,
                )
            with pytest.raises(InsufficientBalance):
                await ex.place_order(
                    symbol="BTCUSDT", side=Side.SELL, type=OrderType.MARKET, client_order_id="cx-5", quantity=Decimal(5)
                )
        finally:
            await ex.close()


async def test_polling_pushes_changes_made_behind_the_adapter(fake_binance) -> None:  # noqa: F811
    async with fake_binance(start_paused=True) as srv:
        ex = ccxt_exchange(srv, user_stream="poll")  # the poller alone (test_user_stream.py: the stream)
        engine = srv.state.trading.engine
        ups: list[Any] = []
        try:
            last = engine.last_price("BTCUSDT")
            await ex.place_order(
                symbol="BTCUSDT",
                side=Side.BUY,
                type=OrderType.LIMIT,
                client_order_id="px-1",
                quantity=Decimal("0.01"),
                price=(last / 2).quantize(Decimal("0.01")),
            )
            # subscribed once the order rests, so the first poll's balances show USDT locked (subscribed
            # before, that poll could read the balances before the order and the cancel would change nothing)
            ex.subscribe_updates(ups.append)
            await wait_for(lambda: any(isinstance(u, BalanceUpdate) for u in ups))  # the first poll's balances
            engine.cancel_order("BTCUSDT", "px-1")  # canceled at the exchange, not through the adapter
            await wait_for(lambda: any(isinstance(u, OrderUpdate) and u.execution_type == "CANCELED" for u in ups))
            upd = next(u for u in ups if isinstance(u, OrderUpdate) and u.execution_type == "CANCELED")
            assert upd.order.client_order_id == "px-1" and upd.order.status is OrderStatus.CANCELED
            await wait_for(lambda: sum(isinstance(u, BalanceUpdate) for u in ups) >= 2)  # USDT unlocked
            usdt = [b for u in ups if isinstance(u, BalanceUpdate) for b in u.balances if b.asset == "USDT"]
            assert usdt[-1].locked == 0 and usdt[-1].free == Decimal(10000)
        finally:
            await ex.close()


@pytest.mark.parametrize("fault", ["order_timeout_prob", "order_5xx_prob"])
async def test_unknown_outcome_is_recovered_by_client_id_without_duplicate(fake_binance, fault: str) -> None:  # noqa: F811
    async with fake_binance(**{fault: 1.0, "order_timeout_s": 1.5}) as srv:
        ex = ccxt_exchange(srv, timeout_s=0.5, fate_query_delay_s=0.1)
        try:
            o = await ex.place_order(
                symbol="BTCUSDT", side=Side.BUY, type=OrderType.MARKET, client_order_id="fu-1", quantity=Decimal("0.01")
            )
            assert o.client_order_id == "fu-1" and o.status is OrderStatus.FILLED
            assert ex.stats["fate_unknown"] == 1 and ex.stats["recovered"] == 1
            engine = srv.state.trading.engine
            assert [x.client_order_id for x in engine.all_orders("BTCUSDT")] == ["fu-1"]  # exactly one order
        finally:
            await ex.close()


async def test_order_never_accepted_raises_order_not_found(fake_binance) -> None:  # noqa: F811
    async with fake_binance() as srv:
        ex = ccxt_exchange(srv, fate_query_attempts=2, fate_query_delay_s=0.05)
        real_check = srv.state.limiter.check

        def fail_new_orders(ip: Any, path: str, query: Any) -> Any:  # a 503 in front of the route
            # ccxt sends a new order's parameters in the POST body: a query naming no order is a new order
            if path == "/api/v3/order" and "origClientOrderId" not in query and "orderId" not in query:
                return 503, {}, {"code": -1001, "msg": "Internal error; unable to process your request."}
            return real_check(ip, path, query)

        srv.state.limiter.check = fail_new_orders
        try:
            with pytest.raises(OrderNotFound):
                await ex.place_order(
                    symbol="BTCUSDT",
                    side=Side.BUY,
                    type=OrderType.MARKET,
                    client_order_id="nf-1",
                    quantity=Decimal("0.01"),
                )
            assert srv.state.trading.engine.all_orders("BTCUSDT") == []
            assert ex.stats["not_found"] == 1 and ex.stats["fate_unknown"] == 1
        finally:
            await ex.close()
