"""Execution benchmarks. Run: `.venv/bin/python benchmarks/execution.py`

1. Matching engine throughput (orders/s): a deterministic mix of limit placements (50%), cancels (30%) and
   market orders (20%) against a moving market (a trade print every 10 operations that fills resting limits),
   on the synchronous SimEngine. Target >= 100 000 orders/s.
   Baseline, measured in the same run: inserting the same number of order records into a dict (the cheapest
   possible "order book"), so the ratio shows the engine's cost per order relative to bare Python work.
2. signal -> order-sent p99: NOT measured yet, see `bench_signal_to_order_sent` (placeholder, clearly marked).
"""

from __future__ import annotations

import random
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roottrading.domain import OrderType, Side  # noqa: E402
from roottrading.exchange.errors import BinanceError  # noqa: E402
from roottrading.exchange.filters import SymbolRules  # noqa: E402
from roottrading.exchange.sim import SimConfig, SimEngine  # noqa: E402

D = Decimal
SYMBOL = "BTCUSDT"
RULES = SymbolRules(
    symbol=SYMBOL, base_asset="BTC", quote_asset="USDT", min_price=D("0.01"), max_price=D("1000000"),
    tick_size=D("0.01"), min_qty=D("0.00001"), max_qty=D("9000"), step_size=D("0.00001"),
    notional_filter="MIN_NOTIONAL", min_notional=D("10"),
)


def make_ops(n: int, seed: int = 7) -> list[tuple]:
    """Pre-generated operations so the timed loop measures the engine, not the generator."""
    rng = random.Random(seed)
    ops: list[tuple] = []
    mid = 20000
    for i in range(n):
        if i % 10 == 9:
            mid += rng.randint(-30, 30)
            ops.append(("tick", D(mid) + D("0.37")))
        r = rng.random()
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        if r < 0.5:
            off = rng.randint(1, 60)
            px = D(mid - off if side is Side.BUY else mid + off)
            ops.append(("limit", side, D(rng.randint(50, 500)) * D("0.00001"), px, f"c{i}"))
        elif r < 0.8:
            ops.append(("cancel",))
        else:
            ops.append(("market", side, D(rng.randint(50, 500)) * D("0.00001"), f"c{i}"))
    return ops


def bench_engine(ops: list[tuple]) -> tuple[int, float, int, int]:
    eng = SimEngine([RULES], SimConfig(), balances={"USDT": D(10) ** 12, "BTC": D(10) ** 8})
    eng.on_trade(SYMBOL, 0, D(20000))
    place, cancel, on_trade = eng.place_order, eng.cancel_order, eng.on_trade
    LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
    live: list[str] = []
    orders = rejected = 0
    t = 0
    rng = random.Random(11)
    start = time.perf_counter()
    for op in ops:
        kind = op[0]
        try:
            if kind == "limit":
                place(SYMBOL, op[1], LIMIT, op[4], quantity=op[2], price=op[3])
                live.append(op[4])
                orders += 1
            elif kind == "cancel":
                if live:
                    j = rng.randrange(len(live))
                    live[j], live[-1] = live[-1], live[j]
                    cid = live.pop()
                    orders += 1
                    cancel(SYMBOL, cid)
            elif kind == "market":
                place(SYMBOL, op[1], MARKET, op[3], quantity=op[2])
                orders += 1
            else:
                t += 100
                on_trade(SYMBOL, t, op[1])
        except BinanceError:
            rejected += 1  # e.g. cancelling an order the market already filled (-2011)
    elapsed = time.perf_counter() - start
    return orders, elapsed, rejected, len(eng.my_trades(SYMBOL, limit=10**9))


def bench_baseline(ops: list[tuple]) -> tuple[int, float]:
    """Cheapest possible order handling: store each order record in a dict, pop on cancel."""
    book: dict[str, tuple] = {}
    live: list[str] = []
    orders = 0
    rng = random.Random(11)
    start = time.perf_counter()
    for op in ops:
        kind = op[0]
        if kind == "limit":
            book[op[4]] = op
            live.append(op[4])
            orders += 1
        elif kind == "cancel":
            if live:
                j = rng.randrange(len(live))
                live[j], live[-1] = live[-1], live[j]
                book.pop(live.pop(), None)
                orders += 1
        elif kind == "market":
            book[op[3]] = op
            orders += 1
    return orders, time.perf_counter() - start


# ---------------------------------------------------------------------------------------------------------
# PLACEHOLDER: signal -> order-sent p99 latency.
# To be added once the trader service exists: publish a Signal on a MemoryBus, run coordinator + risk +
# trader in-process against SimExchange, and measure time from publish to SimExchange.place_order call.
# ---------------------------------------------------------------------------------------------------------
def bench_signal_to_order_sent() -> None:
    print("signal -> order-sent p99: not measured yet (needs the trader service; placeholder)")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    ops = make_ops(n)
    bench_engine(make_ops(5_000, seed=1))  # warm-up
    base_orders, base_s = bench_baseline(ops)
    orders, secs, rejected, fills = bench_engine(ops)
    rate, base_rate = orders / secs, base_orders / base_s
    print(f"matching engine: {orders} orders in {secs:.3f}s = {rate:,.0f} orders/s "
          f"({fills} fills, {rejected} rejected cancels of already-filled orders)")
    print(f"baseline dict-insert loop: {base_orders} orders in {base_s:.3f}s = {base_rate:,.0f} orders/s")
    print(f"ratio engine/baseline: {rate / base_rate:.3f} (engine is {base_rate / rate:.1f}x slower than a dict insert)")
    print(f"target >= 100,000 orders/s: {'PASS' if rate >= 100_000 else 'FAIL'}")
    bench_signal_to_order_sent()


if __name__ == "__main__":
    main()
