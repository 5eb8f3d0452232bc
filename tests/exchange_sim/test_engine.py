"""Behaviour of the matching engine: order types, fees, locks, OCO, errors."""

from __future__ import annotations

from decimal import Decimal

import pytest

from roottrading.domain import OrderStatus, OrderType, Side, TimeInForce
from roottrading.exchange import errors as e
from roottrading.exchange.base import BalanceUpdate, OrderUpdate
from roottrading.exchange.sim import SimConfig, SimEngine

from .conftest import simple_rules

D = Decimal
S = "BTCUSDT"
BUY, SELL = Side.BUY, Side.SELL


def test_market_buy_fills_at_last_with_taker_fee_in_base(engine: SimEngine) -> None:
    o = engine.place_order(S, BUY, OrderType.MARKET, "m1", quantity=D("0.1"))
    assert o.status is OrderStatus.FILLED and o.executed_quantity == D("0.1") and o.cumulative_quote == D(2000)
    (fill,) = engine.my_trades(S)
    assert (fill.price, fill.commission, fill.commission_asset, fill.is_maker) == (D(20000), D("0.0001"), "BTC", False)
    b = engine.balances()
    assert b["USDT"].free == D(8000) and b["BTC"].free == D("1.0999")


def test_market_sell_fee_in_quote_and_quote_qty_buy(engine: SimEngine) -> None:
    engine.place_order(S, SELL, OrderType.MARKET, "s1", quantity=D("0.5"))
    assert engine.balance("USDT").free == D(10000) + D(10000) - D(10)
    o = engine.place_order(S, BUY, OrderType.MARKET, "q1", quote_quantity=D("100.005"))
    assert o.executed_quantity == D("0.005") and o.cumulative_quote == D(100)


def test_market_slippage_in_bps_rounded_to_tick() -> None:
    eng = SimEngine([simple_rules()], SimConfig(slippage_bps=D(10)), balances={"USDT": D(10000), "BTC": D(1)})
    eng.on_trade(S, 1, D("20000"))
    eng.place_order(S, BUY, OrderType.MARKET, "b", quantity=D("0.01"))
    eng.place_order(S, SELL, OrderType.MARKET, "s", quantity=D("0.01"))
    assert [f.price for f in eng.my_trades(S)] == [D("20020.00"), D("19980.00")]


def test_limit_rests_locks_funds_and_fills_as_maker(engine: SimEngine) -> None:
    o = engine.place_order(S, BUY, OrderType.LIMIT, "l1", quantity=D("0.1"), price=D("19000"))
    assert o.status is OrderStatus.NEW
    assert engine.balance("USDT").locked == D(1900) and engine.balance("USDT").free == D(8100)
    engine.on_trade(S, 2_000, D("19000.01"))
    assert engine.get_order(S, "l1").status is OrderStatus.NEW
    engine.on_trade(S, 3_000, D("18500"))
    f = engine.my_trades(S)[-1]
    assert (f.price, f.is_maker, f.time) == (D(19000), True, 3_000)
    assert engine.balance("USDT").locked == 0 and engine.balance("USDT").free == D(8100)
    assert engine.get_order(S, "l1").status is OrderStatus.FILLED


def test_crossing_limit_takes_at_market_price_and_returns_improvement(engine: SimEngine) -> None:
    engine.place_order(S, BUY, OrderType.LIMIT, "l1", quantity=D("0.1"), price=D("21000"))
    f = engine.my_trades(S)[-1]
    assert f.price == D(20000) and not f.is_maker
    assert engine.balance("USDT").free == D(8000) and engine.balance("USDT").locked == 0


def test_cancel_unlocks_and_errors(engine: SimEngine) -> None:
    engine.place_order(S, SELL, OrderType.LIMIT, "l1", quantity=D("0.5"), price=D("25000"))
    assert engine.balance("BTC").locked == D("0.5")
    c = engine.cancel_order(S, "l1")
    assert c.status is OrderStatus.CANCELED and engine.balance("BTC").free == D(1)
    with pytest.raises(e.CancelRejected):
        engine.cancel_order(S, "l1")
    with pytest.raises(e.NoSuchOrder):
        engine.get_order(S, "nope")
    with pytest.raises(e.InvalidSymbol):
        engine.place_order("XXXUSDT", BUY, OrderType.MARKET, "x", quantity=D(1))


def test_rejections_use_binance_codes(engine: SimEngine) -> None:
    with pytest.raises(e.InsufficientBalance):
        engine.place_order(S, BUY, OrderType.LIMIT, "big", quantity=D(1), price=D(19000))
    with pytest.raises(e.InsufficientBalance):
        engine.place_order(S, SELL, OrderType.MARKET, "big2", quantity=D(2))
    with pytest.raises(e.FilterFailure, match="LOT_SIZE"):
        engine.place_order(S, BUY, OrderType.LIMIT, "lot", quantity=D("0.000015"), price=D(19000))
    with pytest.raises(e.FilterFailure, match="MIN_NOTIONAL"):
        engine.place_order(S, BUY, OrderType.LIMIT, "tiny", quantity=D("0.0001"), price=D(19000))
    with pytest.raises(e.WouldMatchAndTake):
        engine.place_order(S, BUY, OrderType.LIMIT_MAKER, "mk", quantity=D("0.01"), price=D(20001))
    with pytest.raises(e.WouldTriggerImmediately):
        engine.place_order(
            S, SELL, OrderType.STOP_LOSS_LIMIT, "sl", quantity=D("0.01"), price=D(20500), stop_price=D(20100)
        )
    with pytest.raises(e.MandatoryParamMissing):
        engine.place_order(S, BUY, OrderType.LIMIT, "np", quantity=D("0.01"))
    engine.place_order(S, BUY, OrderType.LIMIT, "dup", quantity=D("0.01"), price=D(19000))
    with pytest.raises(e.DuplicateOrder):
        engine.place_order(S, BUY, OrderType.LIMIT, "dup", quantity=D("0.01"), price=D(19000))
    assert engine.balance("USDT").locked == D(190)  # rejected orders locked nothing


def test_ioc_and_fok_with_volume_cap() -> None:
    eng = SimEngine([simple_rules()], SimConfig(volume_cap=D("0.1")), balances={"USDT": D(100000)})
    eng.on_trade(S, 1, D(20000), quantity=D(1))  # 0.1 BTC tradable on this print
    ioc = eng.place_order(
        S, BUY, OrderType.LIMIT, "ioc", quantity=D("0.3"), price=D(20000), time_in_force=TimeInForce.IOC
    )
    assert ioc.status is OrderStatus.EXPIRED and ioc.executed_quantity == D("0.1")
    eng.on_trade(S, 2, D(20000), quantity=D(1))
    fok = eng.place_order(
        S, BUY, OrderType.LIMIT, "fok", quantity=D("0.3"), price=D(20000), time_in_force=TimeInForce.FOK
    )
    assert fok.status is OrderStatus.EXPIRED and fok.executed_quantity == 0
    gtc = eng.place_order(S, BUY, OrderType.LIMIT, "gtc", quantity=D("0.3"), price=D(20000))
    assert gtc.status is OrderStatus.PARTIALLY_FILLED and gtc.executed_quantity == D("0.1")
    eng.on_trade(S, 3, D(19990), quantity=D(1))
    eng.on_trade(S, 4, D(19990), quantity=D(5))
    assert eng.get_order(S, "gtc").status is OrderStatus.FILLED
    assert eng.balance("USDT").locked == 0
    m = eng.place_order(S, BUY, OrderType.MARKET, "m", quantity=D("1"))  # budget of last print: 0.5 - 0.1 used
    assert m.status is OrderStatus.EXPIRED and m.executed_quantity == D("0.4")


def test_stop_loss_and_take_profit_trigger(engine: SimEngine) -> None:
    engine.place_order(S, SELL, OrderType.STOP_LOSS_LIMIT, "sl", quantity=D("0.1"), price=D(18900), stop_price=D(19000))
    engine.place_order(
        S, SELL, OrderType.TAKE_PROFIT_LIMIT, "tp", quantity=D("0.1"), price=D(21000), stop_price=D(21000)
    )
    assert engine.balance("BTC").locked == D("0.2")
    engine.on_trade(S, 2, D(19500))
    assert engine.get_order(S, "sl").status is OrderStatus.NEW
    engine.on_trade(S, 3, D(18950))  # discrete tick: the triggered limit meets the market at 18950
    sl = engine.get_order(S, "sl")
    assert sl.status is OrderStatus.FILLED and engine.my_trades(S)[-1].price == D(18950)
    engine.on_trade(S, 4, D(21500))
    assert engine.get_order(S, "tp").status is OrderStatus.FILLED and engine.my_trades(S)[-1].price == D(21500)


def test_oco_one_leg_fills_other_expires(engine: SimEngine) -> None:
    lst = engine.place_oco(
        S,
        SELL,
        D("0.5"),
        price=D(22000),
        stop_price=D(19000),
        stop_limit_price=D(18900),
        list_client_order_id="L",
        limit_client_order_id="tp",
        stop_client_order_id="sl",
    )
    assert lst.list_status == "EXEC_STARTED" and {o.type for o in lst.orders} == {
        OrderType.LIMIT_MAKER,
        OrderType.STOP_LOSS_LIMIT,
    }
    assert engine.balance("BTC").locked == D("0.5")  # one lock for both legs
    engine.on_trade(S, 2, D(22000))
    assert engine.get_order(S, "tp").status is OrderStatus.FILLED
    assert engine.get_order(S, "sl").status is OrderStatus.EXPIRED
    assert engine.order_list(lst.order_list_id).list_status == "ALL_DONE"
    assert engine.balance("BTC").locked == 0 and engine.balance("BTC").free == D("0.5")


def test_oco_stop_trigger_expires_limit_and_cancel_cancels_both(engine: SimEngine) -> None:
    engine.place_oco(S, SELL, D("0.5"), D(22000), D(19000), D(18900), "L", "tp", "sl")
    engine.on_trade(S, 2, D(18990))
    assert engine.get_order(S, "tp").status is OrderStatus.EXPIRED
    assert engine.get_order(S, "sl").status is OrderStatus.FILLED
    engine.place_oco(S, SELL, D("0.1"), D(22000), D(18000), D(17900), "L2", "tp2", "sl2")
    engine.cancel_order(S, "tp2")
    assert engine.get_order(S, "sl2").status is OrderStatus.CANCELED
    assert engine.balance("BTC").locked == 0
    with pytest.raises(e.NewOrderRejected, match="relationship"):
        engine.place_oco(S, SELL, D("0.1"), D(18000), D(19000), D(18900), "L3", "a", "b")


def test_latency_delays_matching(engine: SimEngine) -> None:
    eng = SimEngine([simple_rules()], SimConfig(latency_ms=100), balances={"USDT": D(10000)})
    eng.on_trade(S, 1_000, D(20000))
    o = eng.place_order(S, BUY, OrderType.MARKET, "m", quantity=D("0.1"))
    assert o.status is OrderStatus.NEW and eng.my_trades(S) == []
    eng.on_trade(S, 1_050, D(20100))  # still in flight
    assert eng.get_order(S, "m").status is OrderStatus.NEW
    eng.on_trade(S, 1_200, D(20300))  # reaches the engine at 1_100, when the market was 20100
    f = eng.my_trades(S)[-1]
    assert (f.price, f.time) == (D(20100), 1_100)


def test_updates_stream(engine: SimEngine) -> None:
    seen: list = []
    unsub = engine.subscribe(seen.append)
    engine.place_order(S, BUY, OrderType.LIMIT, "l", quantity=D("0.1"), price=D(19000))
    engine.on_trade(S, 2, D(18000))
    kinds = [(type(u).__name__, getattr(u, "execution_type", None)) for u in seen]
    assert kinds[0] == ("OrderUpdate", "NEW") and ("OrderUpdate", "TRADE") in kinds
    trade = next(u for u in seen if isinstance(u, OrderUpdate) and u.execution_type == "TRADE")
    assert trade.fill is not None and trade.order.status is OrderStatus.FILLED
    bal = [u for u in seen if isinstance(u, BalanceUpdate)][-1]
    assert {b.asset for b in bal.balances} == {"BTC", "USDT"}
    unsub()
    engine.place_order(S, BUY, OrderType.MARKET, "m", quantity=D("0.01"))
    assert len(seen) == len(kinds)


def test_max_num_orders(engine: SimEngine) -> None:
    import dataclasses

    eng = SimEngine([dataclasses.replace(simple_rules(), max_num_orders=2)], balances={"USDT": D(10000)})
    eng.on_trade(S, 1, D(20000))
    for i in range(2):
        eng.place_order(S, BUY, OrderType.LIMIT, f"o{i}", quantity=D("0.001"), price=D(19000))
    with pytest.raises(e.FilterFailure, match="MAX_NUM_ORDERS"):
        eng.place_order(S, BUY, OrderType.LIMIT, "o3", quantity=D("0.001"), price=D(19000))
