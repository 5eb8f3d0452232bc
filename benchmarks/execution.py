"""Execution benchmarks. Run: `.venv/bin/python benchmarks/execution.py`

1. Matching engine throughput (orders/s): a deterministic mix of limit placements (50%), cancels (30%) and
   market orders (20%) against a moving market (a trade print every 10 operations that fills resting limits),
   on the synchronous SimEngine. Target >= 100 000 orders/s.
   Baseline, measured in the same run: inserting the same number of order records into a dict (the cheapest
   possible "order book"), so the ratio shows the engine's cost per order relative to bare Python work.
2. signal -> order-sent p50/p99: `bench_signal_to_order_sent` (coordinator + risk + trader in one process on the
   memory bus, SimExchange; baseline: the bus round trip alone, measured in the same run).
"""

from __future__ import annotations

import random
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roottrading.domain import OrderType, Side
from roottrading.exchange.errors import BinanceError
from roottrading.exchange.filters import SymbolRules
from roottrading.exchange.sim import SimConfig, SimEngine

D = Decimal
SYMBOL = "BTCUSDT"
RULES = SymbolRules(
    symbol=SYMBOL,
    base_asset="BTC",
    quote_asset="USDT",
    min_price=D("0.01"),
    max_price=D("1000000"),
    tick_size=D("0.01"),
    min_qty=D("0.00001"),
    max_qty=D("9000"),
    step_size=D("0.00001"),
    notional_filter="MIN_NOTIONAL",
    min_notional=D("10"),
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
# signal -> order-sent latency (trader issue). One process, memory bus, SQLite file store.
# ---------------------------------------------------------------------------------------------------------
def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def _signal_to_order(n: int, report: bool = True) -> dict[str, list[float]]:
    """Latencies in ms: "baseline" (bus round trip), "request" (order.requests -> place_order), "signal"
    (signal -> place_order). Printed unless `report` is False (benchmarks/metrics.py --hot-path compares them)."""
    import asyncio
    import tempfile

    import yaml

    from roottrading import ids
    from roottrading import messages as m
    from roottrading.clock import SimClock
    from roottrading.config import load_settings
    from roottrading.domain import OrderRequest, Signal, SignalStrength
    from roottrading.exchange.sim import SimExchange
    from roottrading.runtime import Host, Wiring
    from roottrading.services.trader.exchange_factory import btcusdt_rules

    class Timed(SimExchange):
        """SimExchange that notes when place_order is called (the end of the measured path)."""

        sent: ClassVar[dict[str, int]] = {}
        event = asyncio.Event()

        async def place_order(self, **kw):  # type: ignore[no-untyped-def]
            Timed.sent[kw["client_order_id"]] = time.perf_counter_ns()
            Timed.event.set()
            return await super().place_order(**kw)

    tmp = Path(tempfile.mkdtemp())
    rules = yaml.safe_load((Path(__file__).resolve().parents[1] / "roottrading/rules.yaml").read_text())
    for r in rules["rules"].values():
        r["enabled"] = False  # measure the pipeline, not the risk limits a benchmark would hit
    (tmp / "rules.yaml").write_text(yaml.safe_dump(rules))
    settings = load_settings(
        symbols="BTCUSDT",
        database_url=f"sqlite+aiosqlite:///{tmp}/b.db",
        api_token="t",
        data_dir=tmp,
        trader_reconcile_s=3600,
        trader_balances_s=3600,
        risk_rules_path=tmp / "rules.yaml",
    )
    clock = SimClock(1_700_000_000_000)
    eng = SimEngine([btcusdt_rules()], SimConfig(), balances={"USDT": D(10) ** 9})
    eng.on_trade(SYMBOL, clock.now_ms(), D(20000))
    ex = Timed(eng, clock)

    async def run(names: list[str], publish_one, n: int) -> tuple[list[float], int]:  # type: ignore[no-untyped-def]
        host = Host(
            settings,
            names,
            clock=clock,
            wiring=Wiring(
                exchange=ex,
                coordinator={
                    "risk_pct": "0.001",
                    "cooldown_s": 0,
                    "allow_multiple_cycles": True,
                    "initial_equity": "100000000",
                },
            ),
        )
        await host.start()
        host.services["trader"].core.last_price[SYMBOL] = D(20000)
        lat, missed = [], 0
        try:
            for i in range(n + 20):
                Timed.event.clear()
                clock.advance(61_000)
                coid, t0 = await publish_one(host, i)
                try:
                    await asyncio.wait_for(Timed.event.wait(), 0.5)
                except TimeoutError:
                    missed += 1
                    continue
                if i >= 20 and coid in Timed.sent:  # first 20: warm-up
                    lat.append((Timed.sent[coid] - t0) / 1e6)
                # one signal at a time on an idle pipeline: the fill, the cycle update and the coordinator's
                # settlement of the reservation all finish before the next signal
                await host.services["trader"].core.settle()
                await host.bus.drain(5)
        finally:
            await host.stop()
        return lat, missed

    async def via_signal(host, i):  # type: ignore[no-untyped-def]
        sig = Signal(
            id=f"bench:{i}:{clock.now_ms()}",
            time=clock.now_ms(),
            symbol=SYMBOL,
            strategy=f"b{i}",
            side=Side.BUY,
            strength=SignalStrength.STRONG,
            price=20000.0,
            stop_loss=19000.0,
        )
        coid = ids.client_order_id(ids.request_id_for_signal(sig.id), "entry")
        t0 = time.perf_counter_ns()
        await host.bus.publish(m.SIGNALS, sig, key=SYMBOL, msg_id=sig.id)
        return coid, t0

    async def via_request(host, i):  # type: ignore[no-untyped-def]
        rq = OrderRequest(
            id=f"breq-{i}-{clock.now_ms()}",
            time=clock.now_ms(),
            symbol=SYMBOL,
            side=Side.BUY,
            quantity=D("0.001"),
            strategy=f"r{i}",
        )
        t0 = time.perf_counter_ns()
        await host.bus.publish(m.ORDER_REQUESTS, rq, key=SYMBOL, msg_id=rq.id)
        return ids.client_order_id(rq.id, "entry"), t0

    # baseline: the bus round trip alone (publish -> a handler runs), same bus backend, same run
    from roottrading.bus.memory import MemoryBus

    bus = MemoryBus()
    await bus.start()
    got = asyncio.Event()
    seen: dict[int, int] = {}

    async def handler(msg: m.Message) -> None:
        seen[msg.payload.seq] = time.perf_counter_ns()
        got.set()

    await bus.subscribe("bench.trader", "g", handler)
    base = []
    for i in range(n + 20):
        got.clear()
        t0 = time.perf_counter_ns()
        await bus.publish("bench.trader", m.Ping(seq=i))
        await got.wait()
        if i >= 20:
            base.append((seen[i] - t0) / 1e6)
    await bus.close()

    req_lat, req_missed = await run(["trader"], via_request, n)
    sig_lat, sig_missed = await run(["trader", "risk", "coordinator"], via_signal, n)
    out = {"baseline": base, "request": req_lat, "signal": sig_lat}
    if not report:
        return out
    b50, b99 = _pct(base, 0.5), _pct(base, 0.99)
    print(f"bus round trip alone (baseline): p50 {b50:.3f} ms, p99 {b99:.3f} ms ({len(base)} samples)")
    for label, lat, missed in (
        ("order.requests -> trader -> place_order", req_lat, req_missed),
        ("signal -> coordinator(+risk in-process) -> trader -> place_order", sig_lat, sig_missed),
    ):
        if not lat:
            print(f"{label}: no order reached the exchange ({missed} missed): coordinator not usable here")
            continue
        p50, p99 = _pct(lat, 0.5), _pct(lat, 0.99)
        print(
            f"{label}: p50 {p50:.3f} ms, p99 {p99:.3f} ms ({len(lat)} samples, {missed} without an order); "
            f"p99/baseline p99 = {p99 / b99:.1f}x; target p99 < 2 ms: {'PASS' if p99 < 2 else 'FAIL'}"
        )
    return out


def bench_signal_to_order_sent(n: int = 200) -> None:
    """Signals published on a MemoryBus, coordinator + risk + trader in one Host, SimExchange: time from the
    publish call to the moment the trader calls exchange.place_order (store writes of the cycle and the
    order intent included, SQLite file). Also the trader alone (OrderRequest -> place_order) and the bus
    round trip alone as the baseline."""
    import asyncio
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(_signal_to_order(n))


def main() -> None:
    if "--signal" in sys.argv:  # only the signal -> order-sent part: `execution.py --signal [n]`
        rest = [a for a in sys.argv[1:] if a != "--signal"]
        bench_signal_to_order_sent(int(rest[0]) if rest else 200)
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    ops = make_ops(n)
    bench_engine(make_ops(5_000, seed=1))  # warm-up
    base_orders, base_s = bench_baseline(ops)
    orders, secs, rejected, fills = bench_engine(ops)
    rate, base_rate = orders / secs, base_orders / base_s
    print(
        f"matching engine: {orders} orders in {secs:.3f}s = {rate:,.0f} orders/s "
        f"({fills} fills, {rejected} rejected cancels of already-filled orders)"
    )
    print(f"baseline dict-insert loop: {base_orders} orders in {base_s:.3f}s = {base_rate:,.0f} orders/s")
    print(
        f"ratio engine/baseline: {rate / base_rate:.3f} (engine is {base_rate / rate:.1f}x slower than a dict insert)"
    )
    print(f"target >= 100,000 orders/s: {'PASS' if rate >= 100_000 else 'FAIL'}")
    bench_signal_to_order_sent()


if __name__ == "__main__":
    main()
