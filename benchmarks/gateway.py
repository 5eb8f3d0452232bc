"""Gateway ingest benchmark: WebSocket kline frame -> parsed, sequenced, stored (SQLite, batched) and
published on the memory bus. Baseline in the same run: a raw `websockets` recv loop over the same frames
(no parsing, no store, no bus).

Two measurements per pipeline:
- throughput: the server sends N closed-kline frames as fast as it can; messages/s until the last one is
  published (baseline: received);
- latency: the server paces frames at RATE msg/s; per message, time from the server's send to the publish
  returning (baseline: to recv returning); p50/p99.
Run: .venv/bin/python benchmarks/gateway.py [--n 60000] [--rate 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import msgspec
import websockets

from roottrading.config import load_settings
from roottrading.exchange.binance.ws import BinanceStreamClient
from roottrading.runtime import Host

SYMBOLS = [f"S{i:03d}USDT" for i in range(50)]
T0 = 1_704_067_200_000
STEP = 60_000


def frames(n: int) -> list[tuple[str, int, bytes]]:
    """(symbol, open_time, combined-stream frame) round-robin over the symbols, increasing open times."""
    out = []
    for i in range(n):
        sym = SYMBOLS[i % len(SYMBOLS)]
        t = T0 + (i // len(SYMBOLS)) * STEP
        k = {"t": t, "T": t + STEP - 1, "s": sym, "i": "1m", "f": 0, "L": 1, "o": "100.00000000",
             "c": "101.00000000", "h": "102.00000000", "l": "99.00000000", "v": "12.50000000", "n": 42, "x": True,
             "q": "1262.50000000", "V": "0", "Q": "0", "B": "0"}
        data = {"e": "kline", "E": t + STEP, "s": sym, "k": k}
        out.append((sym, t, msgspec.json.encode({"stream": f"{sym.lower()}@kline_1m", "data": data})))
    return out


class Server:
    """Sends the frames to whoever connects: all at once (rate=0) or paced in 1 ms slices."""

    def __init__(self, fr: list[tuple[str, int, bytes]], rate: float) -> None:
        self.frames, self.rate = fr, rate
        self.sent_ns: dict[tuple[str, int], int] = {}
        self.done = asyncio.Event()

    async def handler(self, ws: websockets.ServerConnection) -> None:
        per_slice = max(1, int(self.rate / 1000)) if self.rate else len(self.frames)
        t_start = time.perf_counter()
        for j in range(0, len(self.frames), per_slice):
            if self.rate:
                delay = t_start + j / self.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            for sym, t, raw in self.frames[j:j + per_slice]:
                self.sent_ns[(sym, t)] = time.perf_counter_ns()
                await ws.send(raw.decode())
        self.done.set()
        await ws.wait_closed()


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


async def baseline(fr: list[tuple[str, int, bytes]], rate: float) -> tuple[float, list[float]]:
    srv = Server(fr, rate)
    lat: list[float] = []
    async with websockets.serve(srv.handler, "127.0.0.1", 0, max_queue=None) as server:
        port = server.sockets[0].getsockname()[1]
        async with websockets.connect(f"ws://127.0.0.1:{port}/", max_queue=None) as ws:
            t0 = time.perf_counter()
            for sym, t, _ in fr:
                await ws.recv()
                lat.append((time.perf_counter_ns() - srv.sent_ns[(sym, t)]) / 1e6)
            elapsed = time.perf_counter() - t0
    return len(fr) / elapsed, lat


async def gateway(fr: list[tuple[str, int, bytes]], rate: float, tmp: Path, tag: str) -> tuple[float, list[float]]:
    settings = load_settings(symbols=",".join(SYMBOLS), database_url=f"sqlite+aiosqlite:///{tmp}/{tag}.db",
                             api_token="t", data_dir=tmp)
    host = Host(settings, ["gateway"])
    await host.bus.start()
    await host.db.migrate()
    gw = host.services["gateway"]
    srv = Server(fr, rate)
    lat: list[float] = []
    published = 0
    finished = asyncio.Event()
    real_publish = host.bus.publish

    async def timed_publish(topic, payload, **kw):  # type: ignore[no-untyped-def]
        nonlocal published
        out = await real_publish(topic, payload, **kw)
        lat.append((time.perf_counter_ns() - srv.sent_ns[(payload.symbol, payload.open_time)]) / 1e6)
        published += 1
        if published == len(fr):
            finished.set()
        return out

    host.bus.publish = timed_publish  # type: ignore[method-assign]
    flusher = asyncio.create_task(gw._flush_loop())  # the ingest path only: no REST backfill in a benchmark
    async with websockets.serve(srv.handler, "127.0.0.1", 0, max_queue=None) as server:
        port = server.sockets[0].getsockname()[1]
        client = BinanceStreamClient(SYMBOLS[:1], "1m", on_event=gw.on_event, base_url=f"ws://127.0.0.1:{port}",
                                     trades=None, stale_after_s=30)
        run = asyncio.create_task(client.run())
        t0 = time.perf_counter()
        await asyncio.wait_for(finished.wait(), 300)
        elapsed = time.perf_counter() - t0
        await client.stop()
        await run
    flusher.cancel()
    await host.bus.close()
    await host.db.close()
    return len(fr) / elapsed, lat


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=60_000)
    ap.add_argument("--rate", type=float, default=20_000)
    args = ap.parse_args()
    fr = frames(args.n)
    paced = frames(min(args.n, int(args.rate * 3)))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        b_tp, _ = await baseline(fr, 0)
        g_tp, _ = await gateway(fr, 0, tmp, "tp")
        _, b_lat = await baseline(paced, args.rate)
        _, g_lat = await gateway(paced, args.rate, tmp, "lat")
    print(f"frames: {args.n} closed klines over {len(SYMBOLS)} symbols (each is stored and published)")
    print(f"throughput  baseline raw recv : {b_tp:>10,.0f} msg/s")
    print(f"throughput  gateway ingest    : {g_tp:>10,.0f} msg/s   ratio gateway/baseline = {g_tp / b_tp:.2f}"
          f"   target >= 20,000: {'PASS' if g_tp >= 20_000 else 'FAIL'}")
    print(f"latency at {args.rate:,.0f} msg/s ({len(paced)} msgs), send -> recv / send -> published:")
    print(f"  baseline p50 {statistics.median(b_lat):.3f} ms  p99 {pct(b_lat, 99):.3f} ms")
    g99 = pct(g_lat, 99)
    print(f"  gateway  p50 {statistics.median(g_lat):.3f} ms  p99 {g99:.3f} ms   "
          f"(p99 ratio {g99 / max(pct(b_lat, 99), 1e-9):.1f}x)   target p99 < 1 ms: {'PASS' if g99 < 1 else 'FAIL'}")


if __name__ == "__main__":
    asyncio.run(main())
