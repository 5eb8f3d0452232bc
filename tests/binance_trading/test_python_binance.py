"""An off-the-shelf client (python-binance, if installed) works against the fake Binance trading side."""

from __future__ import annotations

from decimal import Decimal

import pytest

from .conftest import API_KEY, API_SECRET


async def test_python_binance_async_client_round_trip(fake_binance) -> None:
    from binance import AsyncClient
    from binance.exceptions import BinanceAPIException

    async with fake_binance() as srv:
        # The constructor, not AsyncClient.create(): create() adopts /api/v3/time's offset, and the fake's
        # server time is the replayed market's (2024), while signed requests are checked against the wall clock.
        client = AsyncClient(API_KEY, API_SECRET)
        client.API_URL = srv.url + "/api"
        try:
            last = srv.state.trading.engine.last_price("BTCUSDT")
            price = str((last / 2).quantize(Decimal("0.01")))
            o = await client.create_order(
                symbol="BTCUSDT",
                side="BUY",
                type="LIMIT",
                timeInForce="GTC",
                quantity="0.01",
                price=price,
                newClientOrderId="pb-1",
            )
            assert o["status"] == "NEW" and o["clientOrderId"] == "pb-1" and o["fills"] == []
            got = await client.get_order(symbol="BTCUSDT", origClientOrderId="pb-1")
            assert got["price"] == f"{Decimal(price):.8f}" and got["isWorking"] is True
            assert [x["clientOrderId"] for x in await client.get_open_orders(symbol="BTCUSDT")] == ["pb-1"]
            c = await client.cancel_order(symbol="BTCUSDT", origClientOrderId="pb-1")
            assert c["status"] == "CANCELED" and c["origClientOrderId"] == "pb-1"
            m = await client.order_market_buy(symbol="BTCUSDT", quantity="0.01")
            assert m["status"] == "FILLED" and len(m["fills"]) == 1
            trades = await client.get_my_trades(symbol="BTCUSDT")
            assert [t["orderId"] for t in trades] == [m["orderId"]]
            acct = await client.get_account()
            btc = next(b for b in acct["balances"] if b["asset"] == "BTC")
            assert Decimal(btc["free"]) == 1 + Decimal("0.01") - Decimal(m["fills"][0]["commission"])
            assert await client.create_test_order(symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.01") == {}
            key = await client.stream_get_listen_key()
            assert isinstance(key, str) and len(key) == 60
            with pytest.raises(BinanceAPIException) as err:
                await client.cancel_order(symbol="BTCUSDT", origClientOrderId="pb-1")
            assert err.value.code == -2011
        finally:
            await client.close_connection()
