"""Split-mode benchmarks: every service its own process on Redis Streams + PostgreSQL (docs/split-mode.md).

    .venv/bin/python benchmarks/split.py [--signals 200] [--symbols 8] [--candles 150] [--repeat 3] [--no-check]

1. signal -> order sent, coordinator, risk and trader each in their own `roottrading service` process on Redis
   Streams and a temporary PostgreSQL database (demo mode: the trader's stored paper account is the exchange).
   Signals are published one at a time on an idle pipeline (the next after the previous cycle is ACTIVE).
   Per signal, from the platform clock timestamps the messages carry: the signal's envelope ts (publish time)
   to the trader's OrderUpdate.time of the entry's first update (stamped once the exchange answered the order
   and the order was stored: the order has certainly been sent). The order's created_at (the intent, stamped
   before it is stored and sent) is printed too. Baseline, same run, same measurement: the same three services
   in ONE process (Host, memory bus, the coordinator asks risk in process), on its own PostgreSQL database.
   Target: split p99 < 10 ms. The timestamps are epoch ms: each figure is +-1 ms.
2. Analyzer throughput, 1 vs 2 `roottrading service analyzer` processes: N closed candles for each of S symbols
   flooded onto their candle topics (publish_many), timed until the analyzer group has read and acked every
   entry (lag 0, nothing pending: the bus's drain condition). Windows are warmed from stored history first, so
   every strategy evaluates every candle. Runs alternate 1 and 2 instances --repeat times (the host is shared
   and noisy); the medians are compared. Target: 2 instances >= 1.6x one.

Exit status 1 when a target is missed (unless --no-check). Needs Redis and PostgreSQL (tests/conftest.py URLs).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import structlog
import yaml
from execution import _pct as pct
from split_procs import (
    Services,
    base_env,
    cpu_seconds,
    create_database,
    drop_database,
    drop_keys,
    load_average,
    service_ports_env,
)

from roottrading import ids
from roottrading import messages as m
from roottrading.bus.base import MessageBus, partition_of
from roottrading.bus.redis import RedisBus
from roottrading.domain import Candle, CycleStatus, Side, Signal, SignalStrength

SYMBOL = "BTCUSDT"
PRICE = 20_000.0
# Popular Binance pairs: realistic names, so the partition each symbol's candle topic uses (crc32 of the key)
# is what a user's symbols would give, not a hand-picked spread.
POPULAR = [
    "BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "LTCUSDT",
    "DOTUSDT", "LINKUSDT", "AVAXUSDT", "TRXUSDT", "MATICUSDT", "ATOMUSDT", "XLMUSDT", "UNIUSDT",
]  # fmt: skip
# Fixed small stakes, no cooldown, several cycles per strategy: every signal becomes an order.
COORDINATOR = {
    "stake_quote": "15",
    "cooldown_s": "0",
    "allow_multiple_cycles": "true",
    "initial_equity": "100000000",
}


def risk_rules_off(directory: Path) -> Path:
    """The packaged rules, each disabled: the benchmark measures the pipeline, not limits it would hit (the
    risk check itself still runs, over HTTP in split mode)."""
    src = Path(__file__).resolve().parents[1] / "roottrading/rules.yaml"
    rules = yaml.safe_load(src.read_text())
    for r in rules["rules"].values():
        r["enabled"] = False
    out = directory / "rules.yaml"
    out.write_text(yaml.safe_dump(rules))
    return out


def price_candle() -> Candle:
    """One closed candle: the trader's last price and the paper account's market for MARKET fills."""
    open_time = (time.time_ns() // 1_000_000 // 60_000 - 1) * 60_000
    return Candle(
        symbol=SYMBOL,
        interval="1m",
        open_time=open_time,
        close_time=open_time + 59_999,
        open=PRICE,
        high=PRICE,
        low=PRICE,
        close=PRICE,
        volume=10,
    )


# ---------------------------------------------------------------------------------------------------------
# 1. signal -> order sent
# ---------------------------------------------------------------------------------------------------------
class OrderWatch:
    """Subscribed to order.updates and cycle.updates: the first update of each order, the cycles' states."""

    def __init__(self) -> None:
        self.first: dict[str, m.OrderUpdate] = {}
        self.cycles: dict[str, CycleStatus] = {}
        self.changed = asyncio.Event()

    async def on_order(self, msg: m.Message) -> None:
        upd: m.OrderUpdate = msg.payload
        self.first.setdefault(upd.order.client_order_id, upd)
        self.changed.set()

    async def on_cycle(self, msg: m.Message) -> None:
        self.cycles[msg.payload.id] = msg.payload.status
        self.changed.set()

    async def until(self, cond: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not cond():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                return bool(cond())
        return True


async def drive_signals(bus: MessageBus, tag: str, n: int, warmup: int) -> tuple[list[float], list[float], int]:
    """Publish n + warmup entry signals one at a time; per signal after the warm-up, (order first update ts -
    signal ts, order created_at - signal ts) in ms. Returns (sent, intent, signals without an order)."""
    watch = OrderWatch()
    subs = [
        await bus.subscribe(m.ORDER_UPDATES, f"bench-{tag}", watch.on_order),
        await bus.subscribe(m.CYCLE_UPDATES, f"bench-{tag}", watch.on_cycle),
    ]
    sent: list[float] = []
    intent: list[float] = []
    missed = 0
    try:
        for i in range(n + warmup):
            now = time.time_ns() // 1_000_000
            sig = Signal(
                id=f"bench-{tag}-{i}",
                time=now,
                symbol=SYMBOL,
                strategy="bench",
                side=Side.BUY,
                strength=SignalStrength.STRONG,
                price=PRICE,
                stop_loss=PRICE * 0.9,
            )
            req_id = ids.request_id_for_signal(sig.id)
            coid, cycle = ids.client_order_id(req_id, "entry"), ids.cycle_id(req_id)
            await bus.publish(m.SIGNALS, sig, key=SYMBOL, msg_id=sig.id, ts=now)
            if not await watch.until(lambda c=coid: c in watch.first, 5.0):  # type: ignore[misc]
                missed += 1
                continue
            if i >= warmup:
                upd = watch.first[coid]
                sent.append(float(upd.time - now))
                intent.append(float(upd.order.created_at - now))
            # idle pipeline: the fill, the cycle and the coordinator's settlement finish before the next signal
            await watch.until(lambda c=cycle: watch.cycles.get(c) not in (None, CycleStatus.INITIATING), 5.0)  # type: ignore[misc]
    finally:
        for s in subs:
            await s.stop()
    return sent, intent, missed


async def latency_in_process(db_url: str, work: Path, rules: Path, n: int, warmup: int) -> tuple[Any, ...]:
    """coordinator + risk + trader in this process on the memory bus; the same PostgreSQL, the same settings."""
    from roottrading.config import load_settings
    from roottrading.runtime import Host
    from roottrading.runtime.wiring import Wiring

    settings = load_settings(
        symbols=SYMBOL,
        database_url=db_url,
        bus_url="memory://",
        api_token="bench",
        data_dir=work,
        trading_mode="demo",
        risk_rules_path=rules,
    )
    host = Host(settings, ["risk", "coordinator", "trader"], wiring=Wiring(coordinator=dict(COORDINATOR)))
    await host.start()
    try:
        await host.bus.publish(m.candles_topic(SYMBOL), price_candle(), key=SYMBOL)
        await host.bus.drain(10)
        return await drive_signals(host.bus, "inproc", n, warmup)
    finally:
        await host.stop()


async def latency_split(
    redis_url: str, db_url: str, work: Path, rules: Path, n: int, warmup: int
) -> tuple[tuple[Any, ...], str]:
    """risk, trader and coordinator as `roottrading service` processes on Redis Streams."""
    prefix = f"bench-split-{uuid.uuid4().hex[:8]}"
    env = base_env(
        redis_url,
        prefix,
        db_url,
        work / "data",
        "bench-token",
        SYMBOLS=SYMBOL,
        SERVICE_PORTS=service_ports_env(["risk", "trader", "coordinator"]),
        ROOTTRADING_RULES=str(rules),
        **{f"COORDINATOR_{k.upper()}": v for k, v in COORDINATOR.items()},
    )
    procs = Services(env, work, "bench-token")
    bus = RedisBus(redis_url, prefix=prefix)
    try:
        for name in ("risk", "trader", "coordinator"):  # consumers first, as `up --split` orders them
            child = procs.start(name)
            await procs.wait_healthy(child)
        await bus.start()
        await bus.publish(m.candles_topic(SYMBOL), price_candle(), key=SYMBOL)
        await bus.drain(30)
        result = await drive_signals(bus, "split", n, warmup)
        return result, prefix
    finally:
        await bus.close()
        await procs.stop()
        await drop_keys(redis_url, prefix)


def latency_line(label: str, sent: list[float], intent: list[float], missed: int) -> str:
    if not sent:
        return f"{label}: no order was sent ({missed} signals without an order)"
    return (
        f"{label}: signal -> order sent p50 {pct(sent, 0.5):5.1f} ms  p99 {pct(sent, 0.99):5.1f} ms  "
        f"max {max(sent):5.1f} ms | -> intent stored p50 {pct(intent, 0.5):4.1f} p99 {pct(intent, 0.99):4.1f} ms  "
        f"({len(sent)} signals, {missed} without an order)"
    )


async def bench_latency(a: argparse.Namespace, work: Path) -> bool:
    rules = risk_rules_off(work)
    tag = uuid.uuid4().hex[:8]
    names = [f"rt_bench_inproc_{tag}", f"rt_bench_split_{tag}"]
    urls = [await create_database(nm, a.pg_admin) for nm in names]
    try:
        inproc = await latency_in_process(urls[0], work, rules, a.signals, a.warmup)
        split, _ = await latency_split(a.redis, urls[1], work, rules, a.signals, a.warmup)
    finally:
        for nm in names:
            await drop_database(nm, a.pg_admin)
    print(latency_line("one process (memory bus) ", *inproc))
    print(latency_line("split (3 procs, Redis)   ", *split))
    ok = bool(split[0]) and pct(split[0], 0.99) < 10 and not split[2]
    if split[0] and inproc[0]:
        p99, base = pct(split[0], 0.99), pct(inproc[0], 0.99)
        print(
            f"split/one-process: p50 {pct(split[0], 0.5) / max(pct(inproc[0], 0.5), 0.5):.1f}x  "
            f"p99 {p99 / max(base, 0.5):.1f}x (a 0 ms figure counts as 0.5 ms)   "
            f"target split p99 < 10 ms: {'PASS' if ok else 'FAIL'}"
        )
    return ok


# ---------------------------------------------------------------------------------------------------------
# 2. analyzer throughput, 1 vs 2 instances
# ---------------------------------------------------------------------------------------------------------
def market(symbols: list[str], history: int, fresh: int) -> tuple[list[Candle], dict[str, list[Candle]]]:
    """Stored history (warms every window) and the fresh candles to flood, per symbol."""
    from roottrading.datasets import synthetic_candles

    start = (time.time_ns() // 1_000_000 // 60_000 - history - fresh) * 60_000
    warm: list[Candle] = []
    flood: dict[str, list[Candle]] = {}
    for i, s in enumerate(symbols):
        cs = synthetic_candles(s, "1m", history + fresh, seed=i, start_ms=start, start_price=50.0 + 10 * i)
        warm += cs[:history]
        flood[s] = cs[history:]
    return warm, flood


async def group_lag(r: Any, streams: list[str], group: str) -> int:
    """Entries of `streams` the group has not read and acked yet (XINFO GROUPS lag + pending)."""
    pipe = r.pipeline(transaction=False)
    for s in streams:
        pipe.xinfo_groups(s)
    left = 0
    for groups in await pipe.execute():
        for g in groups:
            if g["name"].decode() == group:
                left += int(g["pending"]) + int(g.get("lag") or 0)
    return left


async def ownership(procs: Services, children: list[Any], symbols: list[str], partitions: int) -> list[list[str]]:
    """The symbols each instance reads: those whose candle partition it holds (from its /health's bus view)."""
    out = []
    for c in children:
        health = await procs.wait_healthy(c)
        consumers = health["components"]["bus"]["consumers"]  # type: ignore[index]
        held = {key.split("/", 1)[0]: parts for key, parts in consumers.items()}
        out.append([s for s in symbols if partition_of(s, partitions) in held.get(m.candles_topic(s), [])])
    return out


async def settled_ownership(
    procs: Services, children: list[Any], symbols: list[str], partitions: int, timeout: float = 30.0
) -> list[list[str]]:
    """Wait until every symbol is read by exactly one instance and that stays so for 1 s (the leases are
    rebalanced every 250 ms): the flood then measures steady state, not a hand-over."""
    deadline, last, since = time.monotonic() + timeout, None, time.monotonic()
    while time.monotonic() < deadline:
        own = await ownership(procs, children, symbols, partitions)
        if sorted(s for o in own for s in o) != sorted(symbols) or own != last:
            last, since = own, time.monotonic()
        elif time.monotonic() - since >= 1.0:
            return own
        await asyncio.sleep(0.1)
    raise RuntimeError(f"analyzer leases did not settle in {timeout}s: {last}")


async def analyzer_run(
    a: argparse.Namespace, db_url: str, work: Path, instances: int, symbols: list[str], flood: dict[str, list[Candle]]
) -> tuple[float, float, list[list[str]], list[int]]:
    """(candles/s, analyzer CPU ms per candle (all instances), symbols read by each instance, candles counted
    by each instance) for one flood. The first
    candle of each symbol is published before the instances start (as a running gateway's would be): the
    partitions holding entries are what the leases balance."""
    prefix = f"bench-an-{uuid.uuid4().hex[:8]}"
    env = base_env(a.redis, prefix, db_url, work / "data", "bench-token", SYMBOLS=",".join(symbols))
    env["ANALYZER_WORKERS"] = "0"  # one process = one core: the instances are the parallelism measured
    procs = Services(env, work, "bench-token")
    bus = RedisBus(a.redis, prefix=prefix)
    try:
        await bus.start()
        for s, cs in flood.items():
            await bus.publish(m.candles_topic(s), cs[0], key=s)
        children = [procs.start("analyzer", f"analyzer#{i}") for i in range(instances)]
        for c in children:
            await procs.wait_healthy(c)
        # only the streams that get entries (one per symbol): polling the lag must not take the CPU the
        # analyzers are measured on (2 cores); a 50 ms poll is ~1% of a flood
        streams = [bus.stream(m.candles_topic(s), partition_of(s, bus.partitions)) for s in symbols]
        own = await settled_ownership(procs, children, symbols, bus.partitions)
        rest = {s: cs[1:] for s, cs in flood.items()}
        total = sum(len(cs) for cs in rest.values())
        cpu0 = [cpu_seconds(c.proc.pid) for c in children]
        t0 = time.perf_counter()
        for s, cs in rest.items():
            await bus.publish_many(m.candles_topic(s), [(c, s) for c in cs])
        deadline = time.monotonic() + a.timeout
        while await group_lag(bus.redis, streams, "analyzer"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"analyzers did not finish {total} candles in {a.timeout}s")
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - t0
        cpu = sum(cpu_seconds(c.proc.pid) for c in children) - sum(cpu0)
        counted = []
        for c in children:
            health = await procs.wait_healthy(c)
            counted.append(int(health["components"]["analyzer"]["candles"]))  # type: ignore[index]
        return total / elapsed, cpu * 1000 / total, own, counted
    finally:
        await bus.close()
        await procs.stop()
        await drop_keys(a.redis, prefix)


async def bench_analyzers(a: argparse.Namespace, work: Path) -> bool:
    from roottrading.store import CandleRepo, Database

    symbols = POPULAR[: a.symbols]
    warm, flood = market(symbols, a.history, a.candles + 1)  # +1: the seed candle of each symbol
    name = f"rt_bench_an_{uuid.uuid4().hex[:8]}"
    url = await create_database(name, a.pg_admin)
    rates: dict[int, list[float]] = {1: [], 2: []}
    cpu: dict[int, list[float]] = {1: [], 2: []}
    try:
        db = Database(url)
        await db.migrate()
        await CandleRepo(db).upsert(warm)
        await db.close()
        for i in range(a.repeat):
            for k in (1, 2) if i % 2 == 0 else (2, 1):  # alternate the order: a load drift hits both alike
                rate, cpu_ms, own, counted = await analyzer_run(a, url, work, k, symbols, flood)
                rates[k].append(rate)
                cpu[k].append(cpu_ms)
                print(
                    f"  run {i + 1}: {k} analyzer(s) {rate:7.0f} candles/s  cpu {cpu_ms:5.2f} ms/candle  "
                    f"symbols per instance {[len(o) for o in own]}  candles handled per instance {counted}  loadavg {load_average()}"
                )
    finally:
        await drop_database(name, a.pg_admin)
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    total = sum(len(cs) - 1 for cs in flood.values())
    ok = two / one >= 1.6
    print(
        f"analyzer throughput ({len(symbols)} symbols x {a.candles} candles = {total}, medians of {a.repeat}): "
        f"1 instance {one:.0f} candles/s, 2 instances {two:.0f} candles/s, ratio {two / one:.2f}x  "
        f"target >= 1.6x: {'PASS' if ok else 'FAIL'}"
    )
    c1, c2 = statistics.median(cpu[1]), statistics.median(cpu[2])
    print(
        f"analyzer CPU per candle (all instances, medians): 1 instance {c1:.2f} ms, 2 instances {c2:.2f} ms; "
        f"on 2 idle cores 2 instances would do {2 * c1 / max(c2, 1e-9):.2f}x one (CPU-bound estimate)"
    )
    return ok


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--signals", type=int, default=200, help="measured signals per deployment (after the warm-up)")
    ap.add_argument("--warmup", type=int, default=20, help="signals not measured (connections, caches)")
    ap.add_argument("--symbols", type=int, default=8, help=f"symbols in the candle flood (at most {len(POPULAR)})")
    ap.add_argument("--candles", type=int, default=150, help="fresh candles per symbol in the flood")
    ap.add_argument("--history", type=int, default=300, help="stored candles per symbol that warm the windows")
    ap.add_argument("--repeat", type=int, default=3, help="floods per instance count; medians compared")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds a flood may take")
    ap.add_argument("--part", choices=("latency", "throughput", "all"), default="all")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    ap.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/test", help="to create/drop DBs")
    ap.add_argument("--no-check", action="store_true", help="exit 0 even when a target is missed")
    a = ap.parse_args()
    a.symbols = max(1, min(a.symbols, len(POPULAR)))
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    import os

    print(f"cores={os.cpu_count()} loadavg at start={load_average()}")
    ok = True
    with tempfile.TemporaryDirectory(prefix="rt-split-bench-") as tmp:
        work = Path(tmp)
        (work / "data").mkdir()
        if a.part in ("latency", "all"):
            ok = await bench_latency(a, work) and ok
        if a.part in ("throughput", "all"):
            ok = await bench_analyzers(a, work) and ok
    print(f"loadavg at end={load_average()}")
    return 0 if ok or a.no_check else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
