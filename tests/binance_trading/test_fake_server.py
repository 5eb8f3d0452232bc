"""BinanceExchange against the fake Binance server over real HTTP + WebSocket."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import httpx
import pytest

from roottrading.domain import OrderStatus, OrderType, Side
from roottrading.exchange.base import BalanceUpdate, OrderUpdate
from roottrading.exchange.binance.signing import HmacSigner, signed_query
from roottrading.exchange.errors import CancelRejected, FilterFailure, InsufficientBalance, NoSuchOrder, OrderNotFound

from .conftest import API_KEY, API_SECRET


async def wait_for(pred, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.02)


async def test_place_fill_cancel_round_trip_over_http_and_ws(fake_binance) -> None:
    async with fake_binance() as srv:
        ex = srv.exchange()
        ups: list = []
        ex.subscribe_updates(ups.append)
        await ex.wait_stream_connected()
        before = await ex.balances()
        last = srv.state.trading.engine.last_price("BTCUSDT")
        # a resting limit far below the market, with a price off the tick grid (rounded down before sending)
        o = await ex.place_order(
            symbol="BTCUSDT",
            side=Side.BUY,
            type=OrderType.LIMIT,
            client_order_id="rt-1",
            quantity=Decimal("0.0123456"),
            price=last / 2 + Decimal("0.0049"),
        )
        assert o.status is OrderStatus.NEW and o.quantity == Decimal("0.01234")
        assert o.price == (last / 2 + Decimal("0.0049")).quantize(Decimal("0.01"), rounding="ROUND_DOWN")
        m = await ex.place_order(
            symbol="BTCUSDT", side=Side.BUY, type=OrderType.MARKET, client_order_id="rt-2", quantity=Decimal("0.01")
        )
        assert m.status is OrderStatus.FILLED
        c = await ex.cancel_order("BTCUSDT", "rt-1")
        assert c.status is OrderStatus.CANCELED and c.client_order_id == "rt-1"
        await wait_for(lambda: any(isinstance(u, OrderUpdate) and u.execution_type == "CANCELED" for u in ups))
        orders = [u for u in ups if isinstance(u, OrderUpdate)]
        assert [(u.order.client_order_id, u.execution_type) for u in orders] == [
            ("rt-1", "NEW"),
            ("rt-2", "TRADE"),
            ("rt-2", "NEW"),
            ("rt-2", "TRADE"),
            ("rt-1", "CANCELED"),
        ] or sorted((u.order.client_order_id, u.execution_type) for u in orders if u.execution_type != "NEW") == [
            ("rt-1", "CANCELED"),
            ("rt-2", "TRADE"),
            ("rt-2", "TRADE"),
        ]
        fills = [u.fill for u in orders if u.fill is not None]
        assert len(fills) == 1  # the FULL answer's fill and the stream's copy are one trade
        f = fills[0]
        assert f.client_order_id == "rt-2" and f.quantity == Decimal("0.01") and f.commission_asset == "BTC"
        assert any(isinstance(u, BalanceUpdate) for u in ups)
        after = await ex.balances()
        assert after["BTC"].free == before["BTC"].free + f.quantity - f.commission
        assert after["USDT"].free == before["USDT"].free - f.quote_quantity
        trades = await ex.my_trades("BTCUSDT")
        assert [(t.trade_id, t.client_order_id) for t in trades] == [(f.trade_id, "rt-2")]
        with pytest.raises(CancelRejected):
            await ex.cancel_order("BTCUSDT", "rt-1")
        with pytest.raises(NoSuchOrder):
            await ex.get_order("BTCUSDT", "never-sent")
        with pytest.raises(FilterFailure):
            await ex.place_order(
                symbol="BTCUSDT",
                side=Side.BUY,
                type=OrderType.LIMIT,
                client_order_id="rt-3",
                quantity=Decimal("0.00001"),
                price=last / 2,
            )  # notional < 5 USDT
        with pytest.raises(InsufficientBalance):
            await ex.place_order(
                symbol="BTCUSDT", side=Side.SELL, type=OrderType.MARKET, client_order_id="rt-4", quantity=Decimal(5)
            )
        await ex.close()


async def _raw(
    srv, method: str, path: str, params: dict, *, key: str | None = API_KEY, secret: str = API_SECRET, sign: bool = True
) -> httpx.Response:
    headers = {"X-MBX-APIKEY": key} if key is not None else {}
    query = signed_query(params, HmacSigner(secret)) if sign else "&".join(f"{k}={v}" for k, v in params.items())
    async with httpx.AsyncClient(base_url=srv.url) as c:
        return await c.request(method, f"{path}?{query}", headers=headers)


async def test_auth_and_validation_errors_match_binance(fake_binance) -> None:
    async with fake_binance() as srv:
        now = int(time.time() * 1000)
        base = {"symbol": "BTCUSDT", "timestamp": now}
        cases = [
            ({"key": None}, base, 401, -2014),
            ({"key": "x" * 64}, base, 401, -2015),
            ({"secret": "wrong"}, base, 400, -1022),
            ({}, {"symbol": "BTCUSDT", "timestamp": now - 60_000}, 400, -1021),
            ({}, {"symbol": "BTCUSDT", "timestamp": now + 5_000}, 400, -1021),
            ({"sign": False}, {"symbol": "BTCUSDT"}, 400, -1102),
            ({}, {"symbol": "NOPE", "timestamp": now}, 400, -1121),
        ]
        for kw, params, status, code in cases:
            r = await _raw(srv, "GET", "/api/v3/openOrders", params, **kw)
            assert (r.status_code, r.json()["code"]) == (status, code), (kw, params, r.text)
        r = await _raw(
            srv,
            "POST",
            "/api/v3/order",
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "quantity": "0.01",
                "price": "1000",
                "timestamp": now,
            },
        )
        assert r.json() == {
            "code": -1102,
            "msg": "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.",
        }
        r = await _raw(srv, "GET", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "zz", "timestamp": now})
        assert r.json() == {"code": -2013, "msg": "Order does not exist."}
        r = await _raw(
            srv, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "zz", "timestamp": now}
        )
        assert r.json() == {"code": -2011, "msg": "Unknown order sent."}
        # response shapes
        last = srv.state.trading.engine.last_price("BTCUSDT")
        shapes = {}
        for i, rt in enumerate(("ACK", "RESULT", "FULL")):
            r = await _raw(
                srv,
                "POST",
                "/api/v3/order",
                {
                    "symbol": "BTCUSDT",
                    "side": "BUY",
                    "type": "LIMIT",
                    "timeInForce": "GTC",
                    "quantity": "0.01",
                    "price": str((last / 2).quantize(Decimal("0.01"))),
                    "newClientOrderId": f"shape-{i}",
                    "newOrderRespType": rt,
                    "timestamp": int(time.time() * 1000),
                },
            )
            assert r.status_code == 200, r.text
            assert r.headers["x-mbx-order-count-10s"] == str(i + 1) and "x-mbx-used-weight-1m" in r.headers
            shapes[rt] = set(r.json())
        assert shapes["ACK"] == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
        assert shapes["RESULT"] > shapes["ACK"] and {"status", "cummulativeQuoteQty", "workingTime"} <= shapes["RESULT"]
        assert shapes["FULL"] == shapes["RESULT"] | {"fills"}
        key = (await _raw(srv, "POST", "/api/v3/userDataStream", {}, sign=False)).json()["listenKey"]
        assert (await _raw(srv, "PUT", "/api/v3/userDataStream", {"listenKey": key}, sign=False)).json() == {}
        r = await _raw(srv, "PUT", "/api/v3/userDataStream", {"listenKey": "nope"}, sign=False)
        assert r.json()["code"] == -1125


@pytest.mark.parametrize("fault", ["order_timeout_prob", "order_5xx_prob"])
async def test_fate_unknown_is_recovered_by_client_id_without_duplicate(fake_binance, fault: str) -> None:
    async with fake_binance(**{fault: 1.0, "order_timeout_s": 1.5}) as srv:
        ex = srv.exchange(timeout_s=0.5, fate_query_delay_s=0.1)
        o = await ex.place_order(
            symbol="BTCUSDT", side=Side.BUY, type=OrderType.MARKET, client_order_id="fu-1", quantity=Decimal("0.01")
        )
        assert o.client_order_id == "fu-1" and o.status is OrderStatus.FILLED
        assert ex.stats["fate_unknown"] == 1 and ex.stats["recovered"] == 1
        engine = srv.state.trading.engine
        assert [x.client_order_id for x in engine.all_orders("BTCUSDT")] == ["fu-1"]  # exactly one order
        await ex.close()


async def test_order_never_accepted_raises_order_not_found(fake_binance) -> None:
    async with fake_binance() as srv:
        ex = srv.exchange(fate_query_attempts=2, fate_query_delay_s=0.05)
        real_check = srv.state.limiter.check

        def fail_new_orders(ip, path, query):  # a 503 in front of the route: the engine never sees the order
            if path == "/api/v3/order" and "side" in query:
                return 503, {}, {"code": -1001, "msg": "Internal error; unable to process your request."}
            return real_check(ip, path, query)

        srv.state.limiter.check = fail_new_orders
        with pytest.raises(OrderNotFound):
            await ex.place_order(
                symbol="BTCUSDT", side=Side.BUY, type=OrderType.MARKET, client_order_id="nf-1", quantity=Decimal("0.01")
            )
        assert srv.state.trading.engine.all_orders("BTCUSDT") == []
        assert ex.stats["not_found"] == 1
        await ex.close()


async def test_dropped_user_stream_reconnects_and_resyncs(fake_binance) -> None:
    async with fake_binance() as srv:
        ex = srv.exchange()
        ups: list = []
        ex.subscribe_updates(ups.append)
        await ex.wait_stream_connected()
        last = srv.state.trading.engine.last_price("BTCUSDT")
        await ex.place_order(
            symbol="BTCUSDT",
            side=Side.BUY,
            type=OrderType.LIMIT,
            client_order_id="dr-1",
            quantity=Decimal("0.01"),
            price=(last / 2).quantize(Decimal("0.01")),
        )
        await wait_for(lambda: any(isinstance(u, OrderUpdate) for u in ups))
        stream = ex._stream
        assert stream is not None
        srv.state.trading.drop_user_streams()
        await wait_for(lambda: not stream.connected.is_set())
        srv.state.trading.engine.cancel_order("BTCUSDT", "dr-1")  # happens while the socket is down
        await wait_for(lambda: stream.stats["connects"] >= 2 and ex.stats["resyncs"] >= 1, timeout=10)
        await wait_for(
            lambda: any(
                isinstance(u, OrderUpdate)
                and u.order.client_order_id == "dr-1"
                and u.order.status is OrderStatus.CANCELED
                for u in ups
            )
        )
        await ex.close()


async def test_state_file_survives_a_restart(fake_binance, tmp_path) -> None:
    state = tmp_path / "engine.json"
    async with fake_binance(state_file=str(state)) as srv:
        ex = srv.exchange(user_stream=False)
        last = srv.state.trading.engine.last_price("BTCUSDT")
        await ex.place_order(
            symbol="BTCUSDT",
            side=Side.BUY,
            type=OrderType.LIMIT,
            client_order_id="ps-1",
            quantity=Decimal("0.01"),
            price=(last / 2).quantize(Decimal("0.01")),
        )
        bal = await ex.balances()
        await ex.close()
    async with fake_binance(state_file=str(state)) as srv:
        ex = srv.exchange(user_stream=False)
        assert (await ex.get_order("BTCUSDT", "ps-1")).status is OrderStatus.NEW
        assert await ex.balances() == bal
        await ex.close()
