"""Intra-candle path convention, snapshot/restore and the async adapter."""

from __future__ import annotations

from decimal import Decimal

from roottrading.clock import SimClock
from roottrading.domain import Candle, OrderStatus, OrderType, Side
from roottrading.exchange.base import Exchange
from roottrading.exchange.sim import SimConfig, SimEngine, SimExchange, restore, to_json

from .conftest import simple_rules

D = Decimal
S = "BTCUSDT"


def candle(t: int, o: float, h: float, lo: float, c: float, v: float = 10.0) -> Candle:
    return Candle(
        symbol=S, interval="1m", open_time=t, close_time=t + 59_999, open=o, high=h, low=lo, close=c, volume=v
    )


def _both_orders() -> SimEngine:
    """A buy limit at 95 and a sell limit at 105; on a candle touching both, the path decides which fills
    first, visible in trade order."""
    eng = SimEngine([simple_rules()], balances={"USDT": D(10000), "BTC": D(1)})
    eng.on_candle(candle(0, 100, 100, 100, 100))
    eng.place_order(S, Side.BUY, OrderType.LIMIT, "buy95", quantity=D("0.2"), price=D(95))
    eng.place_order(S, Side.SELL, OrderType.LIMIT, "sell105", quantity=D("0.2"), price=D(105))
    return eng


def test_bullish_candle_walks_open_low_high_close() -> None:
    eng = _both_orders()
    eng.on_candle(candle(60_000, 100, 106, 94, 104))
    assert [f.client_order_id for f in eng.my_trades(S)] == ["buy95", "sell105"]
    assert eng.last_price(S) == D(104)
    assert all(f.time == 60_000 for f in eng.my_trades(S))


def test_bearish_candle_walks_open_high_low_close() -> None:
    eng = _both_orders()
    eng.on_candle(candle(60_000, 100, 106, 94, 96))
    assert [f.client_order_id for f in eng.my_trades(S)] == ["sell105", "buy95"]


def test_stop_inside_candle_fills_at_stop_but_gap_fills_at_open() -> None:
    eng = SimEngine([simple_rules()], balances={"BTC": D(1)})
    eng.on_candle(candle(0, 100, 100, 100, 100))
    eng.place_order(S, Side.SELL, OrderType.STOP_LOSS_LIMIT, "sl", quantity=D("0.2"), price=D(80), stop_price=D(98))
    eng.on_candle(candle(60_000, 100, 101, 90, 95))  # continuous through 98
    assert eng.my_trades(S)[-1].price == D(98)
    eng.place_order(S, Side.SELL, OrderType.STOP_LOSS_LIMIT, "sl2", quantity=D("0.2"), price=D(80), stop_price=D(93))
    eng.on_candle(candle(120_000, 90, 91, 85, 88))  # gap from 95 to 90 through 93
    assert eng.my_trades(S)[-1].price == D(90)


def test_snapshot_restore_continues_identically() -> None:
    def run(eng: SimEngine, start: int, stop: int) -> None:
        for i in range(start, stop):
            p = 100 + (i % 7) - 3
            eng.on_candle(candle(i * 60_000, p, p + 2, p - 2, p + (1 if i % 2 else -1)))
            if i % 3 == 0:
                eng.place_order(S, Side.BUY, OrderType.LIMIT, f"b{i}", quantity=D("0.2"), price=D(p - 1))
            if i % 4 == 0:
                eng.place_order(S, Side.SELL, OrderType.LIMIT, f"s{i}", quantity=D("0.15"), price=D(p + 1))

    cfg = SimConfig(volume_cap=D("0.01"), latency_ms=500)
    a = SimEngine([simple_rules()], cfg, balances={"USDT": D(100000), "BTC": D(10)})
    run(a, 0, 20)
    blob = to_json(a)
    b = restore(blob, [simple_rules()], cfg)
    assert to_json(b) == blob
    run(a, 20, 40)
    run(b, 20, 40)
    assert to_json(a) == to_json(b)
    assert a.my_trades(S, limit=10_000) == b.my_trades(S, limit=10_000) and len(a.my_trades(S, limit=10_000)) > 10


async def test_async_adapter_implements_port_and_follows_clock() -> None:
    clock = SimClock(1_000)
    eng = SimEngine([simple_rules()], SimConfig(latency_ms=50), balances={"USDT": D(10000)})
    ex = SimExchange(eng, clock)
    assert isinstance(ex, Exchange)
    eng.on_trade(S, 1_000, D(20000))
    got: list = []

    async def on_update(u: object) -> None:
        got.append(u)

    ex.subscribe_updates(on_update)
    o = await ex.place_order(symbol=S, side=Side.BUY, type=OrderType.MARKET, client_order_id="c1", quantity=D("0.1"))
    assert o.status is OrderStatus.NEW
    clock.advance(60)
    assert (await ex.get_order(S, "c1")).status is OrderStatus.FILLED
    assert (await ex.balances())["BTC"].free == D("0.0999")
    assert len(await ex.my_trades(S)) == 1 and await ex.open_orders() == []
    await ex.close()
    assert any(getattr(u, "execution_type", None) == "TRADE" for u in got)
