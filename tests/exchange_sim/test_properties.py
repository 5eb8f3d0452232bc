"""Property tests: random sequences of orders, cancels and market moves keep the money invariants."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from roottrading.domain import OrderType, Side, TimeInForce
from roottrading.exchange.errors import BinanceError
from roottrading.exchange.sim import SimConfig, SimEngine, restore, to_json

from .conftest import simple_rules

D = Decimal
S = "BTCUSDT"
START = {"USDT": D(50000), "BTC": D(2)}

price_st = st.integers(min_value=15000, max_value=25000).map(lambda c: D(c) + D("0.5"))
qty_st = st.integers(min_value=60, max_value=40000).map(lambda k: D(k) * D("0.00001"))
side_st = st.sampled_from([Side.BUY, Side.SELL])

place = st.tuples(
    st.just("place"),
    side_st,
    st.sampled_from(
        [
            OrderType.MARKET,
            OrderType.LIMIT,
            OrderType.LIMIT_MAKER,
            OrderType.STOP_LOSS_LIMIT,
            OrderType.TAKE_PROFIT_LIMIT,
        ]
    ),
    qty_st,
    price_st,
    price_st,
    st.sampled_from(list(TimeInForce)),
)
oco = st.tuples(st.just("oco"), side_st, qty_st, st.integers(1, 3000), st.integers(1, 3000))
cancel = st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=60))
trade = st.tuples(st.just("trade"), price_st, st.one_of(st.none(), qty_st))
book = st.tuples(st.just("book"), price_st, st.integers(1, 50))
candle = st.tuples(
    st.just("candle"), price_st, st.integers(0, 800), st.integers(0, 800), st.integers(-600, 600), qty_st
)
ops_st = st.lists(st.one_of(place, oco, cancel, trade, book, candle), min_size=5, max_size=60)
config_st = st.builds(
    SimConfig,
    maker_fee=st.sampled_from([D(0), D("0.001"), D("0.00075")]),
    taker_fee=st.sampled_from([D(0), D("0.001")]),
    slippage_bps=st.sampled_from([D(0), D(5)]),
    volume_cap=st.sampled_from([None, D("0.1"), D("0.5")]),
    latency_ms=st.sampled_from([0, 50]),
)


def apply(eng: SimEngine, ops: list, t0: int = 0) -> None:
    from roottrading.domain import Candle

    t = t0
    for i, op in enumerate(ops):
        t += 40
        kind = op[0]
        try:
            if kind == "place":
                _, side, typ, qty, px, stop, tif = op
                kw: dict = {"quantity": qty, "time": t}
                if typ is not OrderType.MARKET:
                    kw["price"] = px
                if typ is OrderType.LIMIT or typ in (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT):
                    kw["time_in_force"] = tif
                if typ in (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT):
                    kw["stop_price"] = stop
                eng.place_order(S, side, typ, f"o{t0}-{i}", **kw)
            elif kind == "oco":
                _, side, qty, a, b = op
                last = eng.last_price(S) or D(20000)
                sign = 1 if side is Side.SELL else -1
                eng.place_oco(
                    S,
                    side,
                    qty,
                    last + sign * a,
                    last - sign * b,
                    last - sign * (b + 10),
                    f"L{t0}-{i}",
                    f"lim{t0}-{i}",
                    f"stp{t0}-{i}",
                    time=t,
                )
            elif kind == "cancel":
                opened = eng.open_orders(S)
                if opened:
                    eng.cancel_order(S, opened[op[1] % len(opened)].client_order_id, time=t)
            elif kind == "trade":
                eng.on_trade(S, t, op[1], op[2])
            elif kind == "book":
                eng.on_book(S, t, op[1], op[1] + op[2], D("0.5"), D("0.5"))
            else:
                _, o, up, down, move, vol = op
                c = o + move
                eng.on_candle(
                    Candle(
                        symbol=S,
                        interval="1m",
                        open_time=t,
                        close_time=t + 39,
                        open=float(o),
                        high=float(max(o, c) + up),
                        low=float(min(o, c) - down),
                        close=float(c),
                        volume=float(vol),
                    )
                )
        except BinanceError:
            pass  # rejections are fine; invariants must hold regardless
        check_invariants(eng)


def check_invariants(eng: SimEngine) -> None:
    free, locked = eng.ledger.free, eng.ledger.locked
    for asset in free:
        assert free[asset] >= 0, (asset, free[asset])
        assert locked[asset] >= 0, (asset, locked[asset])
    # locked balance == the sum of live reservations (each shared OCO lock counted once)
    live = {id(o.lock): o.lock for o in eng._open.values() if o.lock is not None}
    for asset in locked:
        assert locked[asset] == sum((lk.amount for lk in live.values() if lk.asset == asset), D(0))
    for o in eng._orders.values():
        assert 0 <= o.executed <= o.quantity
        if o.lock is not None:
            assert o.lock.amount >= 0
    # conservation: balances move exactly by the trades' flows minus commissions
    trades = eng.my_trades(S, limit=10**9)
    d_base = sum(((f.quantity if f.side is Side.BUY else -f.quantity) for f in trades), D(0))
    d_quote = sum(((-f.quote_quantity if f.side is Side.BUY else f.quote_quantity) for f in trades), D(0))
    fee_base = sum((f.commission for f in trades if f.commission_asset == "BTC"), D(0))
    fee_quote = sum((f.commission for f in trades if f.commission_asset == "USDT"), D(0))
    total = {a: free[a] + locked[a] for a in free}
    assert total["BTC"] == START["BTC"] + d_base - fee_base
    assert total["USDT"] == START["USDT"] + d_quote - fee_quote
    # value at fill prices: quote change + base change valued at each fill's price == -fees (valued)
    value_change = (
        sum(
            (
                (-f.quote_quantity + f.price * f.quantity)
                if f.side is Side.BUY
                else (f.quote_quantity - f.price * f.quantity)
            )
            for f in trades
        )
        if trades
        else D(0)
    )
    assert value_change == 0
    fees_valued = (
        sum(((f.commission * f.price) if f.commission_asset == "BTC" else f.commission) for f in trades)
        if trades
        else D(0)
    )
    valued_delta = (
        (total["USDT"] - START["USDT"])
        + sum(
            (
                f.price
                * (
                    (f.quantity - (f.commission if f.commission_asset == "BTC" else 0))
                    if f.side is Side.BUY
                    else -f.quantity
                )
            )
            for f in trades
        )
        if trades
        else D(0)
    )
    assert valued_delta == -fees_valued


def fresh(cfg: SimConfig) -> SimEngine:
    eng = SimEngine([simple_rules()], cfg, balances=dict(START))
    eng.on_trade(S, 0, D(20000))
    return eng


@settings(max_examples=150, deadline=None)
@given(cfg=config_st, ops=ops_st)
def test_random_sequences_keep_invariants(cfg: SimConfig, ops: list) -> None:
    eng = fresh(cfg)
    apply(eng, ops)
    # cancelling everything returns every reservation
    while opened := eng.open_orders():  # (cancelling one OCO leg closes both)
        eng.cancel_order(S, opened[0].client_order_id)
    assert all(v == 0 for v in eng.ledger.locked.values())


@settings(max_examples=40, deadline=None)
@given(cfg=config_st, ops=ops_st, more=ops_st)
def test_determinism_and_snapshot(cfg: SimConfig, ops: list, more: list) -> None:
    a, b = fresh(cfg), fresh(cfg)
    apply(a, ops)
    apply(b, ops)
    assert to_json(a) == to_json(b)
    c = restore(to_json(a), [simple_rules()], cfg)
    apply(a, more, t0=10**6)
    apply(c, more, t0=10**6)
    assert to_json(a) == to_json(c)
