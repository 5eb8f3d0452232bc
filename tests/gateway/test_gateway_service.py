"""Gateway + market API in a Host against the fake exchange (no faults): routes, restart, SimClock, demo-rerun."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import msgspec

from roottrading import messages as m
from roottrading.clock import SimClock
from roottrading.config import load_settings
from roottrading.datasets import synthetic_candles
from roottrading.exchange.fake_binance import FakeBinanceConfig, build_app
from roottrading.runtime import Host, Wiring
from roottrading.runtime.http import build_app as build_http
from roottrading.services.market.aggregate import aggregate
from roottrading.store import Database
from roottrading.store.repos_market import CandleRepo
from tests.marketdata.helpers import serve

from .helpers import BusCollector, gateway_env, wait_for

SYMBOLS = ("BTCUSDT", "ETHUSDT")
FAST = {
    "stale_after_s": 0.5,
    "backoff_initial_s": 0.02,
    "backoff_max_s": 0.2,
    "tick_interval_s": 0.05,
    "gap_grace_s": 0.1,
}


def _cfg(n: int = 400, **kw: object) -> FakeBinanceConfig:
    return FakeBinanceConfig(
        **{
            "symbols": SYMBOLS,
            "synthetic_count": n,
            "history_candles": 100,
            "speed": 60 * 200,
            "updates_per_candle": 2,
            "seed": 1,
            **kw,
        }
    )


async def test_routes_candles_symbols_ticker_and_diagnostic(tmp_path: Path) -> None:
    async with gateway_env(tmp_path, _cfg(), ["market", "gateway"], {**FAST, "warmup_candles": 1000}) as (
        host,
        col,
        fake,
    ):
        total = sum(len(s) for s in fake.market.series.values())
        assert await wait_for(lambda: col.count() >= total, 30)
        gw: Any = host.services["gateway"]
        market: Any = host.services["market"]

        # what the routes below serve has arrived: every candle stored (the write-behind writer), a tick per
        # symbol (the market's own, else the gateway's latest) with the book's bid for BTCUSDT
        def ready() -> bool:
            ticks = {sym: market.ticks.get(sym) or gw.last_tick.get(sym) for sym in SYMBOLS}
            btc = ticks["BTCUSDT"]
            return gw.writer.pending_rows == 0 and all(ticks.values()) and btc is not None and btc.bid is not None

        assert await wait_for(ready, 10), (market.ticks, gw.last_tick, gw.writer.pending_rows)
        app = build_http(host)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            diag = (await client.get("/api/gateway/diagnostic")).json()
            btc = diag["symbols"]["BTCUSDT"]
            assert btc["published"] == 400 and btc["backfilled"] >= 100 and btc["watermark"] is not None
            assert btc["streams"]["btcusdt@kline_1m"]["messages"] > 0
            assert set(btc["streams"]) == {"btcusdt@kline_1m", "btcusdt@aggTrade", "btcusdt@bookTicker"}
            assert diag["connection"]["state"] == "connected"
            health = (await client.get("/api/gateway/health")).json()
            assert health["status"] == "ok" and health["published"] == 800

            src = fake.market.series["BTCUSDT"]
            got = (await client.get("/api/market/candles", params={"symbol": "BTCUSDT", "limit": 5000})).json()
            assert msgspec.convert(got, list[type(src[0])]) == src
            last3 = (await client.get("/api/market/candles", params={"symbol": "btcusdt", "limit": 3})).json()
            assert [c["open_time"] for c in last3] == [c.open_time for c in src[-3:]]
            five = (
                await client.get(
                    "/api/market/candles",
                    params={
                        "symbol": "BTCUSDT",
                        "interval": "5m",
                        "start": str(src[0].open_time),
                        "end": "2024-01-01T02:00:00Z",
                    },
                )
            ).json()
            expected = [c for c in aggregate(src, "5m", "1m") if c.open_time <= src[0].open_time + 7_200_000]
            assert msgspec.convert(five, list[type(src[0])]) == expected and len(expected) == 25
            assert all(c["closed"] for c in five)
            bad = await client.get("/api/market/candles", params={"symbol": "BTCUSDT", "interval": "7m"})
            assert bad.status_code == 422
            bad = await client.get("/api/market/candles", params={"symbol": "BTCUSDT", "start": "yesterday"})
            assert bad.status_code == 422 and "ISO" in bad.json()["detail"]

            syms = (await client.get("/api/market/symbols")).json()
            assert [s["symbol"] for s in syms] == list(SYMBOLS)
            assert syms[0]["source"] == "exchange" and syms[0]["tick_size"] and syms[0]["min_notional"]
            assert "LOT_SIZE" in syms[0]["filters"]

            ticker = (await client.get("/api/market/ticker")).json()
            assert {t["symbol"] for t in ticker} == set(SYMBOLS)
            assert all(t["price"] and t["source"] == "tick" for t in ticker)
            assert ticker[0]["bid"] is not None and ticker[0]["bid"] < ticker[0]["ask"]
    assert col.ticks["BTCUSDT"] and all(t.bid is not None for t in col.ticks["BTCUSDT"][-3:])


async def test_restart_continues_from_the_stored_watermark(tmp_path: Path) -> None:
    app = build_app(_cfg(600, speed=60 * 100))
    fake = app.state.fake
    async with serve(app) as base:
        settings = load_settings(
            symbols=",".join(SYMBOLS),
            database_url=f"sqlite+aiosqlite:///{tmp_path}/r.db",
            api_token="t",
            data_dir=tmp_path,
            binance_rest_url=base,
            binance_ws_url=base.replace("http", "ws"),
        )
        published: list[BusCollector] = []
        for _ in range(2):
            host = Host(settings, ["gateway"], wiring=Wiring(gateway={**FAST, "warmup_candles": 1000}))
            col = BusCollector()
            await host.bus.subscribe(m.candles_topic("BTCUSDT"), "t", col.on_candle)
            await host.start()
            # run until it has published a stretch of candles (a condition, not a guess at the machine's speed)
            assert await wait_for(lambda col=col: len(col.candles.get("BTCUSDT", [])) >= 20, 30)
            await host.services["gateway"].stop()  # flushes what it took; then let the bus deliver it
            assert await host.bus.drain(5)
            await host.stop()
            published.append(col)
            closed_while_down = fake.market.now_ms + 5 * 60_000
            assert await wait_for(lambda t=closed_while_down: fake.market.now_ms >= t, 30)  # candles close, no gateway
        assert await wait_for(lambda: fake.market.finished.is_set(), 20)
        db = Database(settings.database_url)
        stored = await CandleRepo(db).range("BTCUSDT", "1m")
        await db.close()
    first, second = published[0].candles["BTCUSDT"], published[1].candles["BTCUSDT"]
    # the second run starts right after the first one's last candle: no gap, no re-publication
    assert second[0].open_time == first[-1].open_time + 60_000
    src = fake.market.series["BTCUSDT"]
    assert stored == src[: len(stored)] and stored[-1] == second[-1]
    assert first + second == src[: len(first) + len(second)]


async def test_candles_published_but_not_stored_are_published_again_after_a_restart(tmp_path: Path) -> None:
    """The store stops accepting writes mid-run (write-behind: publishing goes on) and the gateway dies
    with candles published but not stored. The next start resumes after the last STORED candle: the
    unstored ones are backfilled, stored and re-published with the same message ids; the store has no gap."""
    app = build_app(_cfg(600, speed=60 * 100))
    fake = app.state.fake
    async with serve(app) as base:
        settings = load_settings(
            symbols=",".join(SYMBOLS),
            database_url=f"sqlite+aiosqlite:///{tmp_path}/u.db",
            api_token="t",
            data_dir=tmp_path,
            binance_rest_url=base,
            binance_ws_url=base.replace("http", "ws"),
        )
        published: list[list[m.Message]] = []
        unstored = 0
        for run in range(2):
            host = Host(
                settings,
                ["gateway"],
                wiring=Wiring(gateway={**FAST, "warmup_candles": 1000, "store_close_timeout_s": 0.2}),
            )
            msgs: list[m.Message] = []

            async def on_candle(msg: m.Message, msgs: list[m.Message] = msgs) -> None:
                msgs.append(msg)

            await host.bus.subscribe(m.candles_topic("BTCUSDT"), "t", on_candle)
            await host.start()
            gw = host.services["gateway"]
            assert await wait_for(lambda msgs=msgs: len(msgs) >= 20, 30)
            if run == 0:

                async def store_hangs(rows: object) -> None:
                    await asyncio.Event().wait()

                gw.writer._commit = store_hangs  # type: ignore[attr-defined,method-assign]
                seen = len(msgs)
                assert await wait_for(lambda msgs=msgs, seen=seen: len(msgs) >= seen + 20, 30)  # published, unstored
            await gw.stop()
            unstored = unstored or gw.writer.pending_rows  # type: ignore[attr-defined]
            assert await host.bus.drain(5)
            await host.stop()
            published.append(msgs)
        assert await wait_for(lambda: fake.market.finished.is_set(), 20)
        db = Database(settings.database_url)
        stored = await CandleRepo(db).range("BTCUSDT", "1m")
        await db.close()
    first, second = ([msg.payload for msg in run] for run in published)
    assert unstored > 0 and len(first) > 10
    src = fake.market.series["BTCUSDT"]
    # the second run re-published the first run's unstored tail, same candles, same ids, then went on
    overlap = [c for c in second if c.open_time <= first[-1].open_time]
    assert overlap and overlap == first[len(first) - len(overlap) :]
    assert {msg.id for msg in published[1][: len(overlap)]} == {msg.id for msg in published[0][-len(overlap) :]}
    assert second == src[len(first) - len(overlap) : len(first) - len(overlap) + len(second)]
    assert stored == src[: len(stored)] and stored[-1] == second[-1]


async def test_sim_clock_follows_candle_close_times(tmp_path: Path) -> None:
    app = build_app(_cfg(300))
    async with serve(app) as base:
        settings = load_settings(
            symbols=",".join(SYMBOLS),
            database_url=f"sqlite+aiosqlite:///{tmp_path}/c.db",
            api_token="t",
            data_dir=tmp_path,
            binance_rest_url=base,
            binance_ws_url=base.replace("http", "ws"),
        )
        clock = SimClock()
        host = Host(settings, ["gateway"], clock=clock, wiring=Wiring(gateway={**FAST, "warmup_candles": 1000}))
        await host.start()
        try:
            gw = host.services["gateway"]
            assert await wait_for(lambda: gw.sym_stats["BTCUSDT"].published >= 300, 20)  # type: ignore[attr-defined]
        finally:
            await host.stop()
    last = app.state.fake.market.series["BTCUSDT"][-1]
    assert clock.now_ms() == last.close_time


async def test_store_ahead_of_exchange_restarts_from_warm_up(tmp_path: Path) -> None:
    """A re-run demo: the store holds a later day than the exchange replays; the gateway starts over."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/g.db")
    await db.migrate()
    future = synthetic_candles("BTCUSDT", "1m", 5, seed=3, start_ms=1_800_000_000_000)
    await CandleRepo(db).upsert(future)
    await db.close()
    async with gateway_env(tmp_path, _cfg(200), gateway={**FAST, "warmup_candles": 1000}) as (_host, col, fake):
        assert await wait_for(lambda: col.count() >= 400, 20)
    assert col.candles["BTCUSDT"] == fake.market.series["BTCUSDT"]
