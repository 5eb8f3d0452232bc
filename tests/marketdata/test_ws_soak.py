"""WS client + REST backfill against the fake exchange with every fault on: the closed candles collected
must equal the source exactly (no gap, no duplicate, no altered value)."""

from __future__ import annotations

import asyncio
import time

from roottrading.datasets import synthetic_candles
from roottrading.domain import Candle, Tick
from roottrading.exchange.binance.rest_market import BinanceMarketRest
from roottrading.exchange.binance.ws import BinanceStreamClient, ConnectionState
from roottrading.exchange.fake_binance import FakeBinanceConfig, build_app

from .helpers import serve

STEP = 60_000


class Collector:
    """What a gateway does: keep closed candles by (symbol, open_time), backfill from a contiguous watermark."""

    def __init__(self, symbols: list[str], first_open: int, rest: BinanceMarketRest) -> None:
        self.candles: dict[tuple[str, int], Candle] = {}
        self.watermark = dict.fromkeys(symbols, first_open - STEP)
        self.rest = rest
        self.ticks = 0
        self.backfilled = 0
        self.conflicts: list[tuple[Candle, Candle]] = []

    def add(self, c: Candle) -> None:
        old = self.candles.setdefault((c.symbol, c.open_time), c)
        if old != c:
            self.conflicts.append((old, c))
        while (c.symbol, self.watermark[c.symbol] + STEP) in self.candles:
            self.watermark[c.symbol] += STEP

    async def on_event(self, ev: Candle | Tick) -> None:
        if isinstance(ev, Candle):
            if ev.closed:
                self.add(ev)
        else:
            self.ticks += 1

    async def on_connected(self) -> None:
        for sym, wm in self.watermark.items():
            for c in await self.rest.backfill(sym, "1m", wm):
                self.backfilled += 1
                self.add(c)


async def test_ws_client_survives_faults_and_loses_nothing() -> None:
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    prices = {"BTCUSDT": 42000.0, "ETHUSDT": 2300.0, "SOLUSDT": 95.0}
    source = {s: synthetic_candles(s, "1m", 1500, seed=11, start_price=prices[s]) for s in symbols}
    cfg = FakeBinanceConfig(
        symbols=tuple(symbols),
        source="candles",
        candles=source,
        history_candles=60,
        speed=60 * 70,
        updates_per_candle=2,
        seed=3,
        drop_every_s=1.0,
        stall_every_s=1.0,
        stall_duration_s=0.6,
        malformed_prob=0.01,
        duplicate_prob=0.01,
        out_of_order_prob=0.01,
    )
    app = build_app(cfg)
    state = app.state.fake
    async with serve(app) as base:
        rest = BinanceMarketRest(base, seed=1)
        col = Collector(symbols, source["BTCUSDT"][0].open_time, rest)
        client = BinanceStreamClient(
            symbols,
            "1m",
            on_event=col.on_event,
            on_connected=col.on_connected,
            base_url=base.replace("http", "ws"),
            trades="aggTrade",
            book_ticker=True,
            stale_after_s=0.25,
            backoff_initial_s=0.05,
            backoff_max_s=0.5,
            seed=2,
        )
        task = asyncio.create_task(client.run())
        expected = {(c.symbol, c.open_time): c for cs in source.values() for c in cs}
        t0 = time.monotonic()
        while time.monotonic() - t0 < 70:
            if state.market.finished.is_set() and len(col.candles) >= len(expected):
                break
            await asyncio.sleep(0.2)
        stats = client.stats()
        await client.stop()
        await asyncio.wait_for(task, 5)
        await rest.aclose()
    assert client.state is ConnectionState.STOPPED
    assert not col.conflicts, col.conflicts[:3]
    assert set(col.candles) == set(expected), (len(col.candles), len(expected))
    assert col.candles == expected  # every value identical, all closed=True
    # The faults really happened and were handled.
    assert state.stats["drops"] >= 2 and state.stats["stalls"] >= 2
    assert state.stats["malformed"] > 0 and state.stats["duplicates"] > 0 and state.stats["out_of_order"] > 0
    assert stats["reconnects"] >= 5 and stats["stale"] >= 2 and stats["malformed"] > 0
    assert col.backfilled > 60 and col.ticks > 1000
    per_stream = stats["streams"]
    assert per_stream["btcusdt@kline_1m"]["messages"] > 1000
    print(
        f"\nsoak: {len(expected)} candles, {time.monotonic() - t0:.1f}s, server={dict(state.stats)}, "
        f"client={ {k: v for k, v in stats.items() if k != 'streams'} }, backfilled={col.backfilled}"
    )
