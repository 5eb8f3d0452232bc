"""The universe service over a simulated exchange of 300 symbols, with the gateway and the analyzer hosted.

Checks, for real (REST and WebSocket against the fake Binance): the live selection equals the pure selection
computed offline from the simulator's history before the refresh instant; the gateway streams exactly the
universe on one connection (one SUBSCRIBE / UNSUBSCRIBE, no reconnect) and stores a new pair's history before
streaming it; a pair that leaves with an open cycle keeps its streams and subscriptions until the cycle ends.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import yaml

from roottrading import messages as m
from roottrading.clock import SimClock
from roottrading.config import load_settings
from roottrading.domain import CycleStatus, Side, TradeCycle
from roottrading.exchange.fake_binance import FakeBinanceConfig, build_app
from roottrading.exchange.fake_binance.many import many_symbols
from roottrading.exchange.fake_binance.rest import symbol_info
from roottrading.exchange.filters import SymbolRules
from roottrading.runtime import Host
from roottrading.runtime.http import build_app as build_http
from roottrading.runtime.wiring import Wiring
from roottrading.store import CandleRepo
from roottrading.universe import UniverseState, parse_universe, select, stats_at
from tests.marketdata.helpers import serve

UNIVERSE = """
refresh: 1h
lookback: 2h
source: {type: volume, top: 20, keep_top: 25, quote: USDT}
filters:
  - {type: patterns, blacklist: ["S2*"]}
  - {type: min_notional, stake: 25}
scoring: {size: 6, keep_rank: 9, cooldown: 2h, weights: {volume: 2, volatility: 1, momentum: 0}}
forced: [S001USDT]
"""
GATEWAY = {
    "stale_after_s": 120,  # the market is paused: no frames
    "tick_interval_s": 0.05,
    "warmup_candles": 60,
    "fetch_exchange_info": False,
}


async def wait_until(pred: Any, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.02)


def cycle(sym: str, status: CycleStatus) -> TradeCycle:
    return TradeCycle(
        id=f"c-{sym}",
        symbol=sym,
        strategy="t",
        side=Side.BUY,
        status=status,
        created_at=0,
        updated_at=0,
        quantity=Decimal(1),
    )


async def test_volume_universe_over_300_symbols_drives_gateway_and_keeps_open_cycles(tmp_path: Path) -> None:
    cfg = FakeBinanceConfig(**many_symbols(300, seed=3), synthetic_count=300, history_candles=240, start_paused=True)
    app = build_app(cfg)
    fake = app.state.fake
    ufile = tmp_path / "universe.yaml"
    ufile.write_text(UNIVERSE)
    async with serve(app) as base:
        settings = load_settings(
            symbols="S001USDT,S002USDT",
            database_url=f"sqlite+aiosqlite:///{tmp_path}/u.db",
            api_token="t",
            data_dir=tmp_path,
            binance_rest_url=base,
            binance_ws_url=base.replace("http", "ws"),
            universe_config=str(ufile),
            strategies="ema_cross",
        )
        clock = SimClock(fake.market.now_ms)
        host = Host(settings, ["analyzer", "universe", "gateway"], clock=clock, wiring=Wiring(gateway=GATEWAY))
        changes: list[m.UniverseChanged] = []

        async def on_change(msg: m.Message) -> None:
            changes.append(msg.payload)

        await host.bus.subscribe(m.UNIVERSE_CHANGED, "test", on_change)
        await host.start()
        try:
            uni: Any = host.services["universe"]
            gw: Any = host.services["gateway"]
            await wait_until(lambda: changes)
            first = changes[0]
            at = uni.selection.at

            # the same selection, computed offline from the simulator's history before `at` (what a backtest does)
            series = fake.market.series
            rules = {s: SymbolRules.from_binance(symbol_info(s, series[s])) for s in series}
            expected = select(
                parse_universe(yaml.safe_load(UNIVERSE)),
                stats_at(series, at, 2 * 3_600_000, rules=rules),
                UniverseState(members=frozenset({"S001USDT", "S002USDT"})),
                at,
            )
            assert first.members == list(expected.members) and len(first.members) == 7  # forced + size 6
            assert first.members[0] == "S001USDT" and "S002USDT" in first.removed
            reasons = {p.symbol: p.reason for p in uni.selection.pairs}
            assert len(reasons) == 270  # every USDT pair judged (the 30 BTC-quoted ones are not candidates)
            assert reasons == {p.symbol: p.reason for p in expected.pairs}
            kinds = {r.split(" ")[0] for r in reasons.values()}
            assert kinds >= {"forced", "rank", "volume", "blacklisted", "lot"}  # lot: the stake does not fit

            # the gateway streams exactly the universe, on the one connection it opened at start
            await wait_until(lambda: sorted(gw.symbols) == sorted(first.streamed))
            conn = next(iter(fake.hub.connections))
            await wait_until(lambda: {s.split("@")[0].upper() for s in conn.streams} == set(first.streamed))
            assert gw.client.reconnects == 0 and len(fake.hub.connections) == 1
            repo = CandleRepo(host.db)
            for sym in first.added:
                assert await repo.count(sym, "1m") >= 59  # its history was stored before streaming it
            assert sorted(host.settings.symbols) == sorted(first.streamed)  # hosted services follow
            assert ("analyzer", m.candles_topic(first.added[0]), "analyzer") in host._by_key

            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_http(host)), base_url="http://t") as c:
                doc = (await c.get("/api/universe")).json()
                assert doc["members"] == first.members and doc["dynamic"] is True
                row = next(p for p in doc["pairs"] if p["symbol"] == first.members[1])
                assert row["selected"] and row["rank"] == 1 and set(row["scores"]) >= {"volume", "total"}
                assert row["stats"]["quote_volume"] > 0

                # a member with an open cycle leaves (blacklisted): it stays streamed until the cycle ends
                leaver = first.members[1]
                await host.ctx.publish(m.CYCLE_UPDATES, cycle(leaver, CycleStatus.ACTIVE))
                await wait_until(lambda: uni.open_cycles.get(leaver))
                uni.cfg = parse_universe(
                    {**yaml.safe_load(UNIVERSE), "filters": [{"type": "patterns", "blacklist": ["S2*", leaver]}]}
                )
                r = await c.post("/api/universe/refresh", headers={"Authorization": "Bearer t"})
                assert r.status_code == 200 and leaver not in r.json()["members"]
                await wait_until(lambda: len(changes) == 2)
                second = changes[1]
                assert leaver in second.removed and leaver not in second.members and leaver in second.streamed
                assert second.added  # its slot went to the next best pair
                await wait_until(lambda: sorted(gw.symbols) == sorted(second.streamed))
                assert leaver in gw.seqs and ("analyzer", m.candles_topic(leaver), "analyzer") in host._by_key
                assert uni.describe()["open_cycles"] == {leaver: 1}

                await host.ctx.publish(m.CYCLE_UPDATES, cycle(leaver, CycleStatus.COMPLETED))
                await wait_until(lambda: len(changes) == 3)
                assert leaver not in changes[2].streamed and changes[2].members == second.members
                await wait_until(lambda: leaver not in gw.symbols)
                await wait_until(lambda: not any(s.startswith(leaver.lower()) for s in conn.streams))
                assert ("analyzer", m.candles_topic(leaver), "analyzer") not in host._by_key
                assert gw.client.reconnects == 0 and len(fake.hub.connections) == 1
        finally:
            await host.stop()
