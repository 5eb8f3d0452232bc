"""A fill pushed from an order's own answer (Binance's FULL response, through ccxt) equals the exchange's trade.

The bug (issue 16, found by the ccxt trader soak's audit): the `fills` of Binance's order response carry no
side and no time, ccxt parses them with side None and timestamp None, and the adapter pushed every such fill
as a SELL at time 0. The trader stored BUY fills as sells: its balances drifted from the exchange's.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from roottrading.domain import OrderType, Side
from roottrading.exchange.base import OrderUpdate
from roottrading.exchange.ccxt.adapter import CcxtExchange
from roottrading.exchange.ccxt.convert import fill_from_ccxt
from tests.binance_trading.conftest import API_KEY, API_SECRET, fake_binance  # noqa: F401 (fixture)


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
async def test_fill_pushed_from_the_order_answer_equals_the_exchange_trade(fake_binance, side: Side) -> None:  # noqa: F811
    async with fake_binance(start_paused=True) as srv:
        ex = CcxtExchange("binance", api_key=API_KEY, secret=API_SECRET, rest_url=srv.url, poll_interval_s=60)
        ups: list[Any] = []
        ex.subscribe_updates(ups.append)
        try:
            order = await ex.place_order(
                symbol="BTCUSDT", side=side, type=OrderType.MARKET, client_order_id="f-1", quantity=Decimal("0.001")
            )
            pushed = [u.fill for u in ups if isinstance(u, OrderUpdate) and u.fill is not None]
            traded = await ex.my_trades("BTCUSDT")
        finally:
            await ex.close()
    assert len(pushed) == 1 and len(traded) == 1
    assert pushed[0].side is side and pushed[0].time == order.updated_at > 0
    assert pushed[0] == traded[0]


def test_a_trade_without_a_side_is_refused_not_guessed() -> None:
    with pytest.raises(ValueError, match="side"):
        fill_from_ccxt({"id": "1", "order": "1", "amount": 1, "price": 1}, "BTCUSDT", "c")
