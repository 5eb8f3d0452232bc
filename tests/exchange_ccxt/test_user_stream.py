"""The ccxt adapter's user stream (exchange/ccxt/stream.py) against the fake Binance's WebSocket API
(fake_binance/wsapi_user.py), through ccxt.pro's binance class: watch_orders / watch_my_trades / watch_balance
over `userDataStream.subscribe.signature`.

The poller is slowed to 10 minutes in these tests, so an update that arrives was pushed by the stream; the
reconnect test checks that a change made while the socket was down is found by the reconciliation poll that
follows the reconnect.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import msgspec
import pytest
import websockets

from roottrading.domain import OrderStatus, OrderType, Side
from roottrading.exchange.base import BalanceUpdate, OrderUpdate
from roottrading.exchange.binance.signing import HmacSigner
from roottrading.exchange.ccxt.adapter import CcxtExchange
from tests.binance_trading.conftest import API_KEY, API_SECRET, Server, fake_binance  # noqa: F401 (fixture)
from tests.waiting import eventually

SLOW = 600.0  # the poller's interval and the reconciliation's: nothing arrives from them during a test


def streaming(srv: Server, **kw: Any) -> CcxtExchange:
    kw.setdefault("poll_interval_s", SLOW)
    kw.setdefault("reconcile_interval_s", SLOW)
    return CcxtExchange("binance", api_key=API_KEY, secret=API_SECRET, rest_url=srv.url, **kw)


def trades_of(ups: list[Any]) -> list[OrderUpdate]:
    return [u for u in ups if isinstance(u, OrderUpdate) and u.fill is not None]


async def live(ex: CcxtExchange, ups: list[Any]) -> None:
    """Subscribe and wait for the stream's first connection (and the reconciliation after it)."""
    await ex.exchange_info()
    ex.subscribe_updates(ups.append)
    await eventually(lambda: ex.stream is not None and ex.stream.live, what="user stream live")


async def rest_limit(ex: CcxtExchange, engine: Any, cid: str, side: Side = Side.BUY) -> Decimal:
    last = engine.last_price("BTCUSDT")
    price = (last * Decimal("0.99") if side is Side.BUY else last * Decimal("1.01")).quantize(Decimal("0.01"))
    await ex.place_order(
        symbol="BTCUSDT", side=side, type=OrderType.LIMIT, client_order_id=cid, quantity=Decimal("0.01"), price=price
    )
    return price


async def test_a_fill_and_balances_arrive_through_the_stream_not_the_poller(fake_binance) -> None:  # noqa: F811
    async with fake_binance(start_paused=True) as srv:
        ex = streaming(srv)
        engine = srv.state.trading.engine
        ups: list[Any] = []
        try:
            await live(ex, ups)
            polls = ex.stats["polls"]  # the reconciliation after the connect; no other poll comes
            price = await rest_limit(ex, engine, "st-1")
            assert trades_of(ups) == []  # resting: no fill in the order's answer
            engine.on_trade(
                "BTCUSDT", engine.now + 1000, price - Decimal(1), Decimal(1)
            )  # the market trades through it
            await eventually(lambda: trades_of(ups), what="the fill pushed by the stream")
            (u,) = trades_of(ups)
            (record,) = engine.my_trades("BTCUSDT")
            assert u.fill is not None and u.fill.trade_id == str(record.trade_id) and u.fill.client_order_id == "st-1"
            assert (u.fill.price, u.fill.quantity, u.fill.side) == (record.price, Decimal("0.01"), Side.BUY)
            assert u.fill.commission == record.commission and u.fill.commission_asset == "BTC"
            assert u.order.client_order_id == "st-1" and u.order.type is OrderType.LIMIT
            assert u.order.status is OrderStatus.FILLED and u.order.executed_quantity == Decimal("0.01")
            # the balances after the fill, exactly the exchange's
            account = {b.asset: b for b in (await ex.balances()).values()}
            await eventually(
                lambda: any(
                    b.asset == "BTC" and b.free == account["BTC"].free
                    for x in ups
                    if isinstance(x, BalanceUpdate)
                    for b in x.balances
                ),
                what="BTC balance after the fill pushed",
            )
            assert ex.stats["polls"] == polls and ex.stream is not None and ex.stream.stats["trades"] == 1
            assert "st-1" not in ex._tracked  # final: no longer polled either
        finally:
            await ex.close()


async def test_a_cancel_behind_the_adapter_arrives_through_the_stream(fake_binance) -> None:  # noqa: F811
    async with fake_binance(start_paused=True) as srv:
        ex = streaming(srv)
        engine = srv.state.trading.engine
        ups: list[Any] = []
        try:
            await live(ex, ups)
            polls = ex.stats["polls"]
            await rest_limit(ex, engine, "sc-1")
            engine.cancel_order("BTCUSDT", "sc-1")  # at the exchange, not through the adapter
            await eventually(
                lambda: any(isinstance(u, OrderUpdate) and u.execution_type == "CANCELED" for u in ups),
                what="the cancel pushed by the stream",
            )
            (c,) = [u for u in ups if isinstance(u, OrderUpdate) and u.execution_type == "CANCELED"]
            assert c.order.client_order_id == "sc-1" and c.order.status is OrderStatus.CANCELED
            await eventually(
                lambda: any(
                    b.asset == "USDT" and b.locked == 0 and b.free == Decimal(10000)
                    for x in ups
                    if isinstance(x, BalanceUpdate)
                    for b in x.balances
                ),
                what="USDT unlocked",
            )
            assert ex.stats["polls"] == polls
        finally:
            await ex.close()


async def test_reconnects_after_the_socket_drops_and_reconciles_what_it_missed(fake_binance) -> None:  # noqa: F811
    async with fake_binance(start_paused=True) as srv:
        ex = streaming(srv)
        engine = srv.state.trading.engine
        acct = srv.state.trading
        ups: list[Any] = []
        try:
            await live(ex, ups)
            assert ex.stream is not None
            price = await rest_limit(ex, engine, "sr-1")
            connects = ex.stream.stats["connects"]
            ex.stream.retry_delay_s = 1.0  # the fill below happens while nobody listens
            assert acct.drop_user_streams() == 1
            await eventually(lambda: not ex.stream.live, what="the drop seen")  # type: ignore[union-attr]
            engine.on_trade("BTCUSDT", engine.now + 1000, price - Decimal(1), Decimal(1))  # lost with the socket
            await eventually(lambda: ex.stream.stats["connects"] > connects, what="reconnected")  # type: ignore[union-attr]
            await eventually(lambda: trades_of(ups), what="the missed fill found by the reconciliation")
            (u,) = trades_of(ups)
            assert u.fill is not None and u.fill.client_order_id == "sr-1" and u.order.status is OrderStatus.FILLED
            assert ex.stream.stats["drops"] == 1
            # and the new connection streams: a second order's fill
            price = await rest_limit(ex, engine, "sr-2")
            engine.on_trade("BTCUSDT", engine.now + 1000, price - Decimal(1), Decimal(1))
            await eventually(lambda: len(trades_of(ups)) == 2, what="a fill on the new connection")
            assert ex.stream.stats["trades"] == 1  # this one by the stream; the missed one by the poll
        finally:
            await ex.close()


async def test_without_a_stream_the_poller_keeps_its_interval(fake_binance) -> None:  # noqa: F811
    async with fake_binance(start_paused=True) as srv:
        ex = CcxtExchange("binance", api_key=API_KEY, secret=API_SECRET, rest_url=srv.url, user_stream="poll")
        try:
            assert ex.stream is None and ex.poll_pace_s() == 1.0
        finally:
            await ex.close()
        with pytest.raises(ValueError, match="user_stream"):
            CcxtExchange("binance", api_key=API_KEY, secret=API_SECRET, user_stream="sometimes")
        ex = streaming(srv, poll_interval_s=1.0, reconcile_interval_s=30.0)
        try:
            assert ex.stream is not None and ex.poll_pace_s() == 1.0  # not live yet: polling
            ex.stream.live = True
            assert ex.poll_pace_s() == 30.0
        finally:
            await ex.close()


def _signed(params: dict[str, Any], secret: str = API_SECRET) -> dict[str, Any]:
    payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    return {**params, "signature": HmacSigner(secret).sign(payload)}


async def test_fake_ws_api_checks_the_signature_like_rest(fake_binance) -> None:  # noqa: F811
    async with fake_binance(start_paused=True) as srv:
        url = srv.ws_url + "/ws-api/v3"
        async with websockets.connect(url) as ws:

            async def ask(method: str, params: dict[str, Any]) -> dict[str, Any]:
                await ws.send(msgspec.json.encode({"id": method, "method": method, "params": params}).decode())
                return msgspec.json.decode(await ws.recv())

            now = int(time.time() * 1000)
            bad = await ask("userDataStream.subscribe.signature", _signed({"apiKey": API_KEY, "timestamp": now}, "x"))
            assert (bad["status"], bad["error"]["code"]) == (400, -1022)
            old = await ask("userDataStream.subscribe.signature", _signed({"apiKey": API_KEY, "timestamp": now - 9000}))
            assert bad["id"] == "userDataStream.subscribe.signature" and old["error"]["code"] == -1021
            wrong_key = await ask("userDataStream.subscribe.signature", _signed({"apiKey": "abc", "timestamp": now}))
            assert (wrong_key["status"], wrong_key["error"]["code"]) == (401, -2015)
            ok = await ask("userDataStream.subscribe.signature", _signed({"apiKey": API_KEY, "timestamp": now}))
            assert ok["status"] == 200 and ok["result"] == {"subscriptionId": 0}
            again = await ask("userDataStream.subscribe.signature", _signed({"apiKey": API_KEY, "timestamp": now}))
            assert again["error"]["code"] == -2035
            assert (await ask("session.subscriptions", {}))["result"] == [{"subscriptionId": 0}]
            srv.state.trading.publish_user({"e": "balanceUpdate", "a": "BTC", "d": "1.00000000", "E": 1, "T": 1})
            event = msgspec.json.decode(await ws.recv())
            assert event == {
                "subscriptionId": 0,
                "event": {"e": "balanceUpdate", "a": "BTC", "d": "1.00000000", "E": 1, "T": 1},
            }
            assert (await ask("userDataStream.unsubscribe", {"subscriptionId": 0}))["result"] == {}
            assert (await ask("session.subscriptions", {}))["result"] == []
            assert (await ask("no.such.method", {}))["status"] == 400


class ScriptedClient:
    """Stands in for ccxt.pro's client: watch_orders answers the scripted batches, then raises the last item."""

    def __init__(self, batches: list[Any]) -> None:
        self.batches = batches
        self.has = {"watchOrders": True}

    async def watch_orders(self) -> list[dict[str, Any]]:
        item = self.batches.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    def milliseconds(self) -> int:
        return 0


def _ccxt_order(oid: str, cid: str, amount: Any, status: str = "canceled") -> dict[str, Any]:
    return {
        "id": oid,
        "clientOrderId": cid,
        "symbol": "BTC/USDT",
        "side": "buy",
        "type": "limit",
        "amount": amount,
        "price": 100.0,
        "filled": 0.0,
        "cost": 0.0,
        "status": status,
        "timestamp": 1,
        "info": {},
    }


async def test_an_unusable_update_is_skipped_and_a_crash_leaves_the_poller_at_full_pace() -> None:
    ex = CcxtExchange("binance", api_key=API_KEY, secret=API_SECRET, poll_interval_s=1.0, reconcile_interval_s=30.0)
    try:
        assert ex.stream is not None
        ex._unified = {"BTCUSDT": "BTC/USDT"}
        ups: list[Any] = []
        ex._callbacks.append(ups.append)
        ex.stream.client = ScriptedClient(
            [[_ccxt_order("1", "bad", "not a number"), _ccxt_order("2", "good", 0.01)], RuntimeError("a bug")]
        )
        ex.stream.live = True
        with pytest.raises(RuntimeError):
            await ex.stream._orders()
        assert ex.stream.stats["skipped"] == 1  # not guessed: the next poll reads it
        assert [u.order.client_order_id for u in ups] == ["good"] and ups[0].execution_type == "CANCELED"
        ex.stream.client = ScriptedClient([RuntimeError("a bug in a watch loop")])
        ex.stream.adapter.id = "kraken"  # no Binance subscribe answer to wait for: the grace period path
        with pytest.raises(RuntimeError):
            await ex.stream.run()
        assert not ex.stream.live and ex.poll_pace_s() == 1.0  # the poller back at its interval
    finally:
        ex.id = "binance"
        await ex.close()
