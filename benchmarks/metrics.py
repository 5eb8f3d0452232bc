"""What the metrics add per message, measured directly (the end-to-end benchmarks' p99 is dominated by the
machine's load; this isolates the hooks). Run: `.venv/bin/python benchmarks/metrics.py [n]`

1. A bus handler called bare vs through `Metrics.wrap` (the timing + counting wrapper the Host installs).
2. `Context.publish` of a signal with and without the pipeline tap (`Metrics.on_publish`), on the memory bus.
3. A `/metrics` scrape of a Host with the trading services (render time; off the hot path).
Both measured in the same run, best of 5 rounds; the cost is the difference in ns per message.

`--hot-path [--repeat 3]`: the existing end-to-end benchmarks' target figures, each run with METRICS_ENABLED
on and off alternately in this one process (order swapped every round, best of --repeat per side, since the
host is shared and noisy), with the on/off ratio: the replay backtest (benchmarks/backtest.py: candles/s, and
per CPU second, which a loaded host distorts least; docs/backtesting.md: "a few thousand"), order.requests/signal -> order sent (benchmarks/execution.py, target p99 < 2 ms) and the gateway's
ingest (benchmarks/gateway.py, flood >= 20,000 msg/s, paced p99 < 1 ms).

    .venv/bin/python benchmarks/metrics.py --hot-path [--repeat 3] [--candles 5000] [--signals 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from roottrading import messages as m
from roottrading.clock import SimClock
from roottrading.config import load_settings
from roottrading.domain import Side, Signal, SignalStrength
from roottrading.runtime import Host


async def _time(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            await fn()
        best = min(best, (time.perf_counter_ns() - t0) / n)
    return best


async def main(n: int) -> None:
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    tmp = Path(tempfile.mkdtemp())
    settings = load_settings(
        symbols="BTCUSDT", database_url=f"sqlite+aiosqlite:///{tmp}/b.db", api_token="t", data_dir=tmp
    )
    host = Host(settings, ["trader", "risk", "coordinator", "pnl", "portfolio"], clock=SimClock(1_700_000_000_000))
    assert host.metrics is not None
    msg = m.Message(id="x", topic="market.candles.BTCUSDT", key="BTCUSDT", ts=1, payload=None)

    async def handler(_: m.Message) -> None:
        return None

    wrapped = host.metrics.wrap("analyzer", msg.topic, "analyzer", handler)
    bare_ns = await _time(lambda: handler(msg), n)
    wrapped_ns = await _time(lambda: wrapped(msg), n)
    print(f"handler: bare {bare_ns:.0f} ns, wrapped {wrapped_ns:.0f} ns -> +{wrapped_ns - bare_ns:.0f} ns per message")

    await host.bus.start()
    sig = Signal(
        id="s",
        time=1_700_000_000_000,
        symbol="BTCUSDT",
        strategy="b",
        side=Side.BUY,
        strength=SignalStrength.STRONG,
        price=1.0,
    )
    ctx, ping = host.ctx, m.Ping(seq=1)
    tap = ctx.tap
    rows = {}
    for label, on in (("off", None), ("on", tap)):
        ctx.tap = on
        rows[label] = (
            await _time(lambda: ctx.publish(m.SIGNALS, sig, key="BTCUSDT"), n // 10),
            await _time(lambda: ctx.publish("bench.x", ping, key="BTCUSDT"), n // 10),
        )
    (s_off, p_off), (s_on, p_on) = rows["off"], rows["on"]
    print(
        f"publish a signal: tap off {s_off:.0f} ns, on {s_on:.0f} ns (+{s_on - s_off:.0f}: candle_to_signal observed); "
        f"another topic: off {p_off:.0f} ns, on {p_on:.0f} ns (+{p_on - p_off:.0f})"
    )
    await host.start()
    try:
        await host.metrics.render()  # the first one warms the store's statements up
        t0 = time.perf_counter()
        await host.metrics.refresh()
        t1 = time.perf_counter()
        body = await host.metrics.render()
        t2 = time.perf_counter()
        print(
            f"/metrics scrape: {(t2 - t1) * 1000:.1f} ms, of which refresh (awaited I/O: health, pockets, PnL) "
            f"{(t1 - t0) * 1000:.1f} ms; {len(body)} bytes (off the hot path)"
        )
    finally:
        await host.stop()


# --- --hot-path: the end-to-end benchmarks with metrics on vs off ---------------------------------------------
def _p(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


async def _replay(candles: list[Any]) -> tuple[float, float]:
    """(candles per wall second, per CPU second) of the replay engine (benchmarks/backtest.py's run: ema_cross
    12/26, one symbol). CPU seconds are what other processes on a loaded host inflate least."""
    from decimal import Decimal

    from roottrading.backtest.model import BacktestConfig
    from roottrading.backtest.runner import run_engine

    config = BacktestConfig(
        strategies=("ema_cross",),
        symbols=("BTCUSDT",),
        interval="1m",
        start_ms=candles[0].open_time,
        end_ms=candles[-1].close_time + 1,
        balance=Decimal(10_000),
        engine="replay",
        params={"ema_cross": {"fast": 12, "slow": 26}},
    )
    t, cpu = time.perf_counter(), time.process_time()
    result = await run_engine(config, {"BTCUSDT": candles})
    n = float(result.candles)
    return n / (time.perf_counter() - t), n / (time.process_time() - cpu)


async def _sides(run: Callable[[], Awaitable[Any]], repeat: int) -> dict[str, list[Any]]:
    """Results of `run` with METRICS_ENABLED=true and =false, alternating (on first, then off first, ...)."""
    out: dict[str, list[Any]] = {"on": [], "off": []}
    for r in range(repeat):
        for side in ("on", "off") if r % 2 == 0 else ("off", "on"):
            os.environ["METRICS_ENABLED"] = "true" if side == "on" else "false"
            out[side].append(await run())
    os.environ.pop("METRICS_ENABLED", None)
    return out


def _line(
    label: str,
    offs: list[float],
    ons: list[float],
    higher_is_better: bool,
    target: str = "",
    ok: Callable[[float], bool] | None = None,
) -> None:
    """Best of each side, its range over the runs, the on/off ratio of the bests and the cost; "within noise"
    when the two sides' ranges overlap (the host's load moved the figures more than the metrics did)."""
    best = max if higher_is_better else min
    off, on = best(offs), best(ons)
    cost = (off / on - 1) if higher_is_better else (on / off - 1)
    overlap = min(ons) <= max(offs) and min(offs) <= max(ons)
    verdict = f"; target {target} (on): {'PASS' if ok(on) else 'FAIL'}" if ok is not None else ""
    print(
        f"  {label:<48} off {off:>9,.3f} [{min(offs):,.3f}-{max(offs):,.3f}]  on {on:>9,.3f} "
        f"[{min(ons):,.3f}-{max(ons):,.3f}]  on/off {on / off:.3f} (cost {cost * 100:+.1f} %"
        f"{', within noise' if overlap else ''}){verdict}"
    )


async def hot_path(repeat: int, n_candles: int, n_signals: int, seconds: float) -> None:
    import logging

    import structlog

    from benchmarks import execution, gateway
    from roottrading.datasets import synthetic_candles
    from roottrading.runtime.logsetup import configure_logging

    configure_logging("ERROR", "console")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    print(f"hot path, METRICS_ENABLED on vs off, best of {repeat} per side; load before: {gateway._loadavg()}")
    candles = synthetic_candles("BTCUSDT", "1m", n_candles, seed=7, start_price=20_000.0)
    await _replay(candles[:2_000])  # warm-up (imports, first compilations), not counted
    replay = await _sides(lambda: _replay(candles), repeat)
    orders = await _sides(lambda: execution._signal_to_order(n_signals, report=False), repeat)
    tmp = Path(tempfile.mkdtemp())
    flood_frames, paced_rate = gateway.frames(40_000, "realistic"), 5_000.0
    paced_frames = gateway.frames(int(paced_rate * seconds), "realistic")
    tag = iter(range(10**6))
    flood = await _sides(lambda: gateway.gateway(flood_frames, 0.0, tmp, f"f{next(tag)}"), repeat)
    paced = await _sides(lambda: gateway.gateway(paced_frames, paced_rate, tmp, f"p{next(tag)}"), repeat)
    print(f"load after: {gateway._loadavg()}")

    print("best of each side [range over the runs]; cost = how much worse the best is with metrics on")
    for i, unit in ((0, "candles/s"), (1, "candles/CPU s")):
        _line(f"replay backtest, {n_candles:,} candles ({unit})", *_per(replay, lambda r, i=i: r[i]), True)
    for key, label in (("request", "order.requests -> order sent"), ("signal", "signal -> order sent")):
        for q, name in ((0.5, "p50"), (0.99, "p99")):
            ok = (lambda v: v < 2) if name == "p99" else None
            _line(f"{label} {name} (ms)", *_per(orders, lambda r, k=key, q=q: _p(r[k], q)), False, "p99 < 2 ms", ok)
    _line(
        "gateway flood, realistic mix (msg/s)", *_per(flood, lambda r: r.rate), True, ">= 20,000", lambda v: v >= 20_000
    )
    for attr, name in (("handled", "send -> handled"), ("published", "send -> published")):
        vals = _per(paced, lambda r, a=attr: gateway.pct(getattr(r, a), 99))
        _line(f"gateway paced {paced_rate:,.0f}/s {name} p99 (ms)", *vals, False, "p99 < 1 ms", lambda v: v < 1)


def _per(runs: dict[str, list[Any]], value: Callable[[Any], float]) -> tuple[list[float], list[float]]:
    return [value(r) for r in runs["off"]], [value(r) for r in runs["on"]]


if __name__ == "__main__":
    if "--hot-path" in sys.argv:
        ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        ap.add_argument("--hot-path", action="store_true")
        ap.add_argument("--repeat", type=int, default=3, help="runs per side; the best is compared (noisy host)")
        ap.add_argument("--candles", type=int, default=5_000, help="replay backtest length")
        ap.add_argument("--signals", type=int, default=200, help="signals / order requests per latency run")
        ap.add_argument("--seconds", type=float, default=3.0, help="length of a paced gateway run")
        a = ap.parse_args()
        asyncio.run(hot_path(a.repeat, a.candles, a.signals, a.seconds))
    else:
        asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000))
