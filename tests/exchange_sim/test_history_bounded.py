"""A paper account running for months keeps bounded memory (issue 17, item 14): the simulated exchange
forgets its oldest trades and closed orders past `history_limit`, never an open order."""

from __future__ import annotations

from decimal import Decimal

import pytest

from roottrading.domain import OrderStatus, OrderType, Side, TimeInForce
from roottrading.exchange.sim import SimConfig, SimEngine

from .conftest import simple_rules

D = Decimal
S = "BTCUSDT"


def test_trades_and_closed_orders_stay_within_the_history_limit() -> None:
    eng = SimEngine([simple_rules()], SimConfig(history_limit=50), balances={"USDT": D(10**7), "BTC": D(100)})
    eng.on_trade(S, 1, D("20000"))
    eng.place_order(
        S, Side.BUY, OrderType.LIMIT, "rest", quantity=D("0.01"), price=D("10000"), time_in_force=TimeInForce.GTC
    )
    for i in range(400):
        eng.place_order(S, Side.BUY if i % 2 else Side.SELL, OrderType.MARKET, f"m{i}", quantity=D("0.001"))
    assert len(eng._trades[S]) <= 55  # limit + the tenth it trims at once
    assert len(eng._orders) <= 55
    newest = eng.my_trades(S, limit=1000)
    assert newest[-1].client_order_id == "m399"  # the newest are kept
    assert [o.client_order_id for o in eng.open_orders(S)] == ["rest"]
    assert eng.get_order(S, "rest").status is OrderStatus.NEW  # open: never forgotten
    assert eng.get_order(S, "m399").status is OrderStatus.FILLED


def test_history_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="history_limit"):
        SimConfig(history_limit=0)
