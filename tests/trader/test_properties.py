"""Property test: random requests, price moves, closes, cancels and kill switches keep the trader's books
identical to the exchange's: orders one to one, no client id reused, positions == fills - base fees."""

from __future__ import annotations

import asyncio
import tempfile
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roottrading import messages as m
from roottrading.clock import SimClock
from roottrading.domain import OrderStatus, OrderType, Side
from roottrading.exchange.sim import SimConfig
from roottrading.services.trader.position import position
from tests.trader.conftest import MIN, SYM, T0, Rig, new_engine, req

D = Decimal

_buy = st.tuples(
    st.just("buy"),
    st.integers(0, 2),
    st.integers(60, 3000),
    st.sampled_from(["M", "L"]),
    st.integers(-300, 300),
    st.sampled_from([None, "2", "4"]),
    st.sampled_from([None, "3"]),
)
_bar = st.tuples(st.just("bar"), st.integers(-400, 400), st.integers(0, 400))
_wide_bar = st.tuples(st.just("bar"), st.integers(-1500, 1500), st.integers(0, 800))  # meets stops: simulated exits
op = st.one_of(
    _buy,
    _buy,
    _buy,
    _bar,
    _bar,
    _wide_bar,
    st.tuples(st.just("sell"), st.integers(0, 2), st.sampled_from([None, 100, 400])),
    st.tuples(st.just("close"), st.integers(0, 10)),
    st.tuples(st.just("cancel"), st.integers(0, 10)),
    st.tuples(st.just("kill")),
    st.tuples(st.just("resume")),
)


async def run(ops: list[tuple], cap: bool, tmp: Path) -> None:
    engine = new_engine(config=SimConfig(volume_cap=D("0.3") if cap else None))
    r = Rig(tmp, engine, SimClock(T0 - MIN))
    await r.start()
    core = r.core
    core.last_price[SYM] = D(20000)
    price = D(20000)
    try:
        for n, o in enumerate(ops):
            kind = o[0]
            if kind == "buy":
                _, s, steps, typ, off, sl_pct, tr = o
                kw = {"stop_loss": price * (1 - D(sl_pct) / 100)} if sl_pct else {}
                if typ == "L":
                    await r.send(
                        req(
                            f"b{n}",
                            qty=str(D(steps) / 100000),
                            type=OrderType.LIMIT,
                            price=str(price + off),
                            strategy=f"s{s}",
                            trailing_pct=D(tr) if tr else None,
                            **kw,
                        )
                    )
                else:
                    await r.send(
                        req(
                            f"b{n}",
                            qty=str(D(steps) / 100000),
                            strategy=f"s{s}",
                            trailing_pct=D(tr) if tr else None,
                            **kw,
                        )
                    )
            elif kind == "sell":
                qty = None if o[2] is None else str(D(o[2]) / 100000)
                await r.send(req(f"x{n}", Side.SELL, qty=qty, strategy=f"s{o[1]}"))
            elif kind == "bar":
                new = max(D(1000), price + o[1])
                hi, lo = max(price, new) + o[2], min(price, new) - o[2]
                await r.bar(float(price), float(hi), float(lo), float(new), vol=0.02)
                price = new
            elif kind in ("close", "cancel"):
                live = sorted(core.open.values(), key=lambda c: c.created_at)
                if live:
                    c = live[o[1] % len(live)]
                    try:
                        if kind == "close":
                            await core.close(c.id)
                        else:
                            await core.cancel(c.entry_order_id)
                    except (KeyError, ValueError):
                        pass
            elif kind == "kill":
                ev = m.RiskEvent(time=0, rule="t", action="kill_switch", message="x")
                await r.svc.on_risk(m.Message(id=f"k{n}", topic=m.RISK_EVENTS, key=None, ts=0, payload=ev))
            else:
                core.resume()
        await core.settle()
        await check(r)
    finally:
        await r.stop()


async def check(r: Rig) -> None:
    engine = r.engine
    ex_orders = {o.client_order_id: o for o in engine.all_orders(SYM)}
    assert len(ex_orders) == len(engine.all_orders(SYM)), "a client order id was used twice on the exchange"
    stored = await r.svc.orders.query(limit=100_000)
    assert len({o.client_order_id for o in stored}) == len(stored)
    accepted = {o.client_order_id: o for o in stored if o.exchange_order_id is not None}
    assert set(accepted) == set(ex_orders), "stored orders and exchange orders differ"
    for cid, o in accepted.items():
        e = ex_orders[cid]
        assert (o.status, o.executed_quantity, o.cumulative_quote) == (
            e.status,
            e.executed_quantity,
            e.cumulative_quote,
        ), cid
    for o in stored:
        if o.exchange_order_id is None:
            assert o.status is OrderStatus.REJECTED and o.client_order_id not in ex_orders
    fills = engine.my_trades(SYM, limit=10**9)
    total_held = D(0)
    cycles, _ = await r.svc.cycles.query(limit=100_000)
    for c in cycles:
        ids_ = {o.client_order_id for o in stored if o.cycle_id == c.id}
        mine = [f for f in fills if f.client_order_id in ids_]
        pos = position(mine, "BTC")
        assert c.quantity == pos.net_bought
        assert pos.held >= 0
        total_held += pos.held
        if c.status.is_terminal:
            assert not any(
                ex_orders[i].status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED) for i in ids_ if i in ex_orders
            )
    bal = engine.balance("BTC")
    assert bal.free + bal.locked == total_held  # every BTC on the account belongs to a cycle
    ledger_fills = await r.svc.orders.fills(limit=100_000)
    assert sorted(f["trade_id"] for f in ledger_fills) == sorted(f.trade_id for f in fills)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=1, max_size=25), cap=st.booleans())
def test_books_match_the_exchange(ops: list[tuple], cap: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(ops, cap, Path(tmp)))
