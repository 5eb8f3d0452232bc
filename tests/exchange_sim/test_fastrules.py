"""FastRules (the simulator's precomputed filter checks) must raise exactly what SymbolRules.check raises."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from roottrading.domain import OrderType, Side
from roottrading.exchange.errors import BinanceError
from roottrading.exchange.filters import SymbolRules
from roottrading.exchange.sim.fastrules import FastRules

D = Decimal


@st.composite
def rules_st(draw: st.DrawFn) -> SymbolRules:
    """Realistic rules (each filter on or off), so that most orders get past the first checks."""
    mstep = draw(st.sampled_from([None, D(0), D("0.001")]))
    return SymbolRules(
        symbol="XUSDT",
        base_asset="X",
        quote_asset="USDT",
        order_types=draw(
            st.one_of(
                st.just(frozenset(t.value for t in OrderType)),
                st.frozensets(st.sampled_from([t.value for t in OrderType]), min_size=1),
            )
        ),
        min_price=draw(st.sampled_from([D(0), D("0.01"), D(1)])),
        max_price=draw(st.sampled_from([D(0), D(30000), D(1000000)])),
        tick_size=draw(st.sampled_from([D(0), D("0.01")])),
        min_qty=draw(st.sampled_from([D(0), D("0.00001"), D("0.001")])),
        max_qty=draw(st.sampled_from([D(0), D(9000)])),
        step_size=draw(st.sampled_from([D(0), D("0.00001")])),
        market_min_qty=draw(st.sampled_from([None, D(0), D("0.01")])) if mstep is not None else None,
        market_max_qty=draw(st.sampled_from([None, D(0), D(100)])) if mstep is not None else None,
        market_step_size=mstep,
        notional_filter=draw(st.sampled_from([None, "MIN_NOTIONAL", "NOTIONAL"])),
        min_notional=draw(st.sampled_from([D(0), D(10)])),
        max_notional=draw(st.sampled_from([D(0), D(50000)])),
        min_notional_apply_to_market=draw(st.booleans()),
        max_notional_apply_to_market=draw(st.booleans()),
        percent_filter=draw(st.sampled_from([None, "PERCENT_PRICE", "PERCENT_PRICE_BY_SIDE"])),
        bid_multiplier_up=draw(st.sampled_from([D(0), D("1.2"), D(5)])),
        bid_multiplier_down=draw(st.sampled_from([D(0), D("0.8"), D("0.2")])),
        ask_multiplier_up=draw(st.sampled_from([D(0), D("1.2"), D(5)])),
        ask_multiplier_down=draw(st.sampled_from([D(0), D("0.8"), D("0.2")])),
    )


quantity_st = st.one_of(
    st.integers(min_value=-2, max_value=2_000_000).map(lambda k: D(k) * D("0.001")),  # on the LOT_SIZE grid
    st.decimals(min_value=D("-1"), max_value=D(200), places=6, allow_nan=False),
    st.integers(min_value=-1, max_value=50),  # an int from an odd caller goes through SymbolRules.check itself
)
price_st = st.one_of(
    st.integers(min_value=-1, max_value=4_000_000).map(lambda k: D(k) * D("0.01")),  # on the tick grid
    st.decimals(min_value=D("-1"), max_value=D(40000), places=3, allow_nan=False),
)


def outcome(fn, *args):  # type: ignore[no-untyped-def]
    try:
        fn(*args)
    except BinanceError as exc:
        return type(exc), exc.code, exc.msg
    except (ArithmeticError, TypeError) as exc:  # e.g. a Decimal remainder beyond the context precision
        return type(exc)
    return None


def edges(rules: SymbolRules, last: Decimal | None, quantity: Decimal) -> list[Decimal]:
    """Prices on and next to the boundaries (price band, notional), so the equality edges are exercised."""
    out = [rules.min_price, rules.max_price]
    if last is not None:
        out += [
            last * m
            for m in (
                rules.bid_multiplier_up,
                rules.bid_multiplier_down,
                rules.ask_multiplier_up,
                rules.ask_multiplier_down,
            )
        ]
    if isinstance(quantity, Decimal) and quantity > 0:
        out += [(n / quantity).quantize(D("0.01")) for n in (rules.min_notional, rules.max_notional)]
    return [e + d for e in out for d in (D("-0.01"), D(0), D("0.01"))]


@settings(max_examples=1500, deadline=None)
@given(rules=rules_st(), side=st.sampled_from(list(Side)), type=st.sampled_from(list(OrderType)), data=st.data())
def test_fast_check_raises_exactly_what_symbol_rules_check_raises(
    rules: SymbolRules,
    side: Side,
    type: OrderType,
    data: st.DataObject,
) -> None:
    last = data.draw(st.one_of(st.none(), price_st))
    qty_edges = [rules.min_qty, rules.max_qty, rules.market_min_qty or D(0), rules.market_max_qty or D(0)]
    quantity = data.draw(st.one_of(quantity_st, st.sampled_from(qty_edges)))
    if isinstance(quantity, int) and data.draw(st.booleans()):
        quantity = D(quantity)
    if (
        type is OrderType.MARKET
        and last is not None
        and isinstance(quantity, Decimal)
        and quantity > 0
        and data.draw(st.booleans())
    ):  # a market order right at a notional bound
        last = data.draw(st.sampled_from([rules.min_notional / quantity, rules.max_notional / quantity]))
    price = data.draw(st.one_of(st.none(), price_st, st.sampled_from(edges(rules, last, quantity))))
    stop = data.draw(st.one_of(st.none(), price_st, st.sampled_from(edges(rules, last, quantity))))
    args = (side, type, quantity, price, stop, last)
    assert outcome(FastRules(rules).check, *args) == outcome(rules.check, *args)


def test_fast_check_examples() -> None:
    rules = SymbolRules(
        symbol="BTCUSDT",
        base_asset="BTC",
        quote_asset="USDT",
        min_price=D("0.01"),
        max_price=D("1000000"),
        tick_size=D("0.01"),
        min_qty=D("0.00001"),
        max_qty=D("9000"),
        step_size=D("0.00001"),
        notional_filter="MIN_NOTIONAL",
        min_notional=D(10),
    )
    fast = FastRules(rules)
    assert fast.check(Side.BUY, OrderType.LIMIT, D("0.001"), D(20000), None, D(20000)) is None
    assert outcome(fast.check, Side.BUY, OrderType.LIMIT, D("0.001"), D("20000.001")) == outcome(
        rules.check, Side.BUY, OrderType.LIMIT, D("0.001"), D("20000.001")
    )
    code = outcome(fast.check, Side.SELL, OrderType.LIMIT, D("0.0001"), D(20000))
    assert code is not None and code[1] == -1013 and code[2] == "Filter failure: MIN_NOTIONAL"
