"""Which order makes the simulator fill a met exit condition where its own intra-bar path meets the level.

Why: a stop, target or trailing stop met inside a bar used to become a MARKET exit sent after the bar was fed,
so the simulator filled it at the bar's close (stop 19,000, wick to 18,500, close 19,800: sold at 19,800).
When the trader feeds the simulator itself it knows the bar before the simulator does, so it places the exit
the bar reaches *before* feeding it, as the order a resting protective order would be, and lets the engine's
path (roottrading.exchange.sim.market.candle_path, the only implementation of it) fill it:

| condition met                                   | order placed                  | the engine fills it at        |
|-------------------------------------------------|-------------------------------|-------------------------------|
| stop-loss / trailing level in force at the open | STOP_LOSS_LIMIT stop=level,   | the level when the path falls |
|                                                 | limit=the data's lowest price | through it, the open on a gap |
| trailing level raised inside the bar            | STOP_LOSS_LIMIT stop=limit=   | the level (it can only be met |
|                                                 | level (LIMIT if the last      | falling from the new high)    |
|                                                 | price is already below it)    |                               |
| take-profit                                     | TAKE_PROFIT_LIMIT stop=limit= | the target, the open on a     |
|                                                 | target                        | favourable gap                |
| condition already true at the last price        | MARKET                        | the last price (now)          |

A stop's limit at the lowest price the data prints never binds (the engine fills a triggered stop at the
price that met it), but keeps the order a limit order as Binance's STOP_LOSS_LIMIT is.
Prices are put on the tick grid away from the trader's favour (a stop rounded down, a target up), so an
exit fills at most one tick from its level. `None` means "no such order fits" (the symbol does not allow the
type, a filter refuses it, the data is off the grid): the caller exits at market after the data, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import NamedTuple

from roottrading.domain import OrderType, Side
from roottrading.exchange.errors import BinanceError
from roottrading.exchange.filters import SymbolRules

STOP_TYPES = (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)


class ExitPlan(NamedTuple):
    """The exit order to place before the simulator sees the data."""

    type: OrderType
    price: Decimal | None = None
    stop_price: Decimal | None = None


def sim_exit_order(
    reason: str,
    level: Decimal,
    raised: bool,
    last: Decimal | None,
    path: Sequence[Decimal],
    rules: SymbolRules,
    quantity: Decimal,
) -> ExitPlan | None:
    """The order for exit `reason` met at `level` on `path` (see the module docstring), checked against the
    symbol's order types and filters; None when no order fits. `raised`: the level is a trailing level raised
    by this very path, so it was met by a continuous fall."""
    if last is None:
        return None
    if reason == "take_profit":
        stop = rules.round_price_up(level)
        if last >= stop:
            plan = ExitPlan(OrderType.MARKET)
        else:
            plan = ExitPlan(OrderType.TAKE_PROFIT_LIMIT, stop, stop)
    else:
        stop = rules.round_price(level)
        if raised:
            plan = ExitPlan(OrderType.LIMIT, stop) if last <= stop else ExitPlan(OrderType.STOP_LOSS_LIMIT, stop, stop)
        elif last <= stop:
            plan = ExitPlan(OrderType.MARKET)
        else:
            plan = ExitPlan(OrderType.STOP_LOSS_LIMIT, rules.round_price(min(path)), stop)
    market = plan.type is OrderType.MARKET
    try:
        rules.check(
            Side.SELL, plan.type, rules.round_quantity(quantity, market=market), plan.price, plan.stop_price, last
        )
    except BinanceError:
        return None
    return plan
