"""The issue's test of stops that survive downtime (issue 19, item 3): the REAL trader service process
(`python -m roottrading service trader`, TRADING_MODE=live, TRADER_EXCHANGE_STOPS=true) against fake Binance
buys, leaves its stop on the exchange, and is killed with SIGKILL while the price falls, before it reaches the
stop; the fall goes on through the stop while no trader runs. The exchange sells at the stop; the restarted trader closes the cycle from that fill (reason
"stop_loss (exchange)"), sends no second sell, and the account's balances equal the initial ones + the fills
- the commissions to the last unit (the soak's audit).

The fake runs in the test's event loop with a scripted market (flat at 20,000, paused, then a fall to
18,400): the fall starts when the test resumes the replay, and since the replay runs in the test's loop, the
price cannot move between the test's look at it and the (synchronous) kill. Ticks from the fake's ticker feed
the trader as in the soak, so after the restart its local stop watching sees prices far below the stop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from decimal import Decimal
from pathlib import Path

import pytest

from roottrading import ids
from roottrading import messages as m
from roottrading.bus.redis import RedisBus
from roottrading.domain import Candle, OrderRequest, OrderStatus, OrderType, Side
from roottrading.services.trader.exchange_stops import EXCHANGE_STOP_REASON
from tests.waiting import eventually

from .conftest import free_port, run_server
from .test_trader_soak import price_feed
from .trader_soak_support import SYMBOL, FakeBinance, Trader, audit

STEP = 60_000
HISTORY = 500
STOP = Decimal("19000")


def market(start_ms: int) -> list[Candle]:
    """HISTORY flat candles at 20,000 (closed when the replay starts), then a fall of 40 a candle to 18,400
    (40 candles: 4 s at the fake's speed of 600), then flat."""
    closes = [20_000.0] * HISTORY + [20_000.0 - 40 * (i + 1) for i in range(40)] + [18_400.0] * 30
    out, prev = [], closes[0]
    for i, close in enumerate(closes):
        t = start_ms + i * STEP
        out.append(
            Candle(
                symbol=SYMBOL,
                interval="1m",
                open_time=t,
                close_time=t + STEP - 1,
                open=prev,
                high=max(prev, close),
                low=min(prev, close),
                close=close,
                volume=1_000.0,
            )
        )
        prev = close
    return out


class StopTrader(Trader):
    def env(self) -> dict[str, str]:
        return {**super().env(), "TRADER_EXCHANGE_STOPS": "true"}


def cycle_row(db: Path, cycle_id: str) -> tuple[object, ...] | None:
    con = sqlite3.connect(db)
    try:
        return con.execute(
            "SELECT status, close_reason, exit_price, exit_order_id FROM trade_cycles WHERE id = ?", (cycle_id,)
        ).fetchone()
    finally:
        con.close()


@pytest.mark.slow
@pytest.mark.parametrize("target", [None, Decimal("21000")], ids=["stop", "oco"])
async def test_kill_9_during_a_fall_through_the_stop(
    tmp_path: Path, redis_url: str, unique: str, target: Decimal | None
) -> None:
    # the replay runs ahead of the wall clock (see FakeBinance.start_ms): the trader reads missed fills from
    # myTrades since an order's creation (wall clock) - 60 s
    start_ms = (int(time.time()) // 60) * 60_000 - HISTORY * STEP + 3 * 3_600_000
    async with run_server(source="candles", candles={SYMBOL: market(start_ms)}, start_paused=True) as srv:
        engine = srv.state.trading.engine
        fake = FakeBinance(int(srv.url.rsplit(":", 1)[1]), tmp_path / "unused.json", tmp_path / "unused.log")
        bus = RedisBus(redis_url, prefix=f"xstop{unique}")
        await bus.start()
        trader = StopTrader(tmp_path, free_port(), srv.url, redis_url, f"xstop{unique}", tmp_path / "trader.log")
        rid = "xstop-entry"
        cid = ids.cycle_id(rid)
        stop_id = ids.protective_order_id(cid, 0)
        stop_feed, last = asyncio.Event(), {}
        feed = asyncio.create_task(price_feed(fake, bus, stop_feed, last))
        try:
            trader.start()
            await asyncio.to_thread(trader.wait_ready, 40)
            await asyncio.to_thread(trader.wait_owner, 40)
            req = OrderRequest(
                id=rid,
                time=int(time.time() * 1000),
                symbol=SYMBOL,
                side=Side.BUY,
                type=OrderType.MARKET,
                quantity=Decimal("0.01"),
                strategy="s1",
                stop_loss=STOP,
                take_profit=target,  # with a target: an OCO (its limit leg expires when the stop leg fills)
            )
            await bus.publish(m.ORDER_REQUESTS, req, key=SYMBOL, msg_id=rid)
            await eventually(
                lambda: any(o.client_order_id == stop_id for o in engine.open_orders(SYMBOL)),
                timeout=40,
                what="the stop resting on the exchange",
            )
            srv.state.market.resume()  # the fall begins
            await eventually(lambda: srv.state.market.last_price[SYMBOL] <= 19_900.0, timeout=20, what="a fall")
            trader.kill()  # kill -9 during the fall, above the stop (the replay waits for this loop)
            assert srv.state.market.last_price[SYMBOL] > float(STOP)
            assert engine.get_order(SYMBOL, stop_id).status is OrderStatus.NEW
            await eventually(
                lambda: engine.get_order(SYMBOL, stop_id).status is OrderStatus.FILLED,
                timeout=30,
                what="the exchange selling at the stop",
            )
            assert cycle_row(trader.db, cid)[0] == "ACTIVE"  # nobody has told the store yet

            trader.start()
            await asyncio.to_thread(trader.wait_ready, 40)
            await asyncio.to_thread(trader.wait_owner, 40)
            await eventually(lambda: cycle_row(trader.db, cid)[0] == "COMPLETED", timeout=30, what="the cycle closed")
            trader.stop()
            orders = await asyncio.to_thread(fake.all_orders)
            trades = await asyncio.to_thread(fake.my_trades)
            account = await asyncio.to_thread(fake.signed, "GET", "/api/v3/account", {})
            stop_feed.set()
            await feed
        finally:
            stop_feed.set()
            feed.cancel()
            if trader.alive():
                trader.kill()
            await bus.redis.delete(*[k async for k in bus.redis.scan_iter(f"xstop{unique}:*")] or ["-"])
            await bus.close()

    status, reason, exit_price, exit_order = cycle_row(trader.db, cid)
    sells = [t for t in trades if not t["isBuyer"]]
    legs = [o for o in orders if o["side"] == "SELL"]
    assert orders[0]["side"] == "BUY" and len(orders) == 1 + len(legs), orders
    assert [o["clientOrderId"] for o in legs] == [ids.protective_order_id(cid, k) for k in range(len(legs))]
    assert len(legs) == (1 if target is None else 2)  # the stop (and the OCO's limit leg): no other sell
    assert len(sells) >= 1 and {t["orderId"] for t in sells} == {legs[0]["orderId"]}
    if target is not None:
        assert legs[1]["type"] == "LIMIT_MAKER" and legs[1]["status"] == "EXPIRED"
    assert (status, reason, exit_order) == ("COMPLETED", EXCHANGE_STOP_REASON, stop_id)
    sold_qty = sum(Decimal(t["qty"]) for t in sells)
    avg = sum(Decimal(t["qty"]) * Decimal(t["price"]) for t in sells) / sold_qty
    assert Decimal(str(exit_price)) == avg and Decimal("18905") <= avg <= STOP
    result = audit(trader.db, orders, trades, account, [rid])
    assert not result.problems, result.problems
