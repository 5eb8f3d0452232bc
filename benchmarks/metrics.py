"""What the metrics add per message, measured directly (the end-to-end benchmarks' p99 is dominated by the
machine's load; this isolates the hooks). Run: `.venv/bin/python benchmarks/metrics.py [n]`

1. A bus handler called bare vs through `Metrics.wrap` (the timing + counting wrapper the Host installs).
2. `Context.publish` of a signal with and without the pipeline tap (`Metrics.on_publish`), on the memory bus.
3. A `/metrics` scrape of a Host with the trading services (render time; off the hot path).
Both measured in the same run, best of 5 rounds; the cost is the difference in ns per message.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

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


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000))
