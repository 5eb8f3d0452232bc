"""The universe survives a restart: the same members and cooldowns, announced again, without a new refresh."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml

from roottrading import messages as m
from roottrading.clock import SimClock
from roottrading.config import load_settings
from roottrading.exchange.fake_binance import FakeBinanceConfig, build_app
from roottrading.exchange.fake_binance.many import many_symbols
from roottrading.runtime import Host
from roottrading.universe import parse_universe
from tests.marketdata.helpers import serve

UNIVERSE = """
refresh: 1h
lookback: 2h
source: {type: volume, top: 12, keep_top: 15, quote: USDT}
scoring: {size: 4, keep_rank: 6, cooldown: 2h, weights: {volume: 2, volatility: 1, momentum: 0}}
forced: [S001USDT]
"""


async def wait_until(pred: Any, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.02)


async def test_restart_restores_members_and_cooldowns_without_a_refresh(tmp_path: Path) -> None:
    cfg = FakeBinanceConfig(**many_symbols(40, seed=5), synthetic_count=40, history_candles=180, start_paused=True)
    app = build_app(cfg)
    fake = app.state.fake
    ufile = tmp_path / "universe.yaml"
    ufile.write_text(UNIVERSE)
    async with serve(app) as base:
        settings = {
            "symbols": "S001USDT,S002USDT",
            "database_url": f"sqlite+aiosqlite:///{tmp_path}/u.db",
            "api_token": "t",
            "data_dir": tmp_path,
            "binance_rest_url": base,
            "binance_ws_url": base.replace("http", "ws"),
            "universe_config": str(ufile),
        }
        clock = SimClock(fake.market.now_ms)

        # first life: a refresh, then a member is blacklisted so it leaves (and starts its cooldown)
        host = Host(load_settings(**settings), ["universe"], clock=clock)
        await host.start()
        try:
            uni: Any = host.services["universe"]
            await wait_until(lambda: uni.selection is not None)
            leaver = uni.selection.members[1]
            uni.cfg = parse_universe(
                {**yaml.safe_load(UNIVERSE), "filters": [{"type": "patterns", "blacklist": [leaver]}]}
            )
            sel = await uni.refresh()
            assert sel is not None and leaver in sel.removed and leaver in sel.state.left_at
            members, state, next_due = sel.members, sel.state, uni.next_due
            pairs = uni.describe()["pairs"]
            assert members != ("S001USDT", "S002USDT")
        finally:
            await host.stop()

        # second life: same database, same market time; no refresh is due before `next_due`
        host = Host(load_settings(**settings), ["universe"], clock=clock)
        changes: list[m.UniverseChanged] = []

        async def on_change(msg: m.Message) -> None:
            changes.append(msg.payload)

        await host.bus.subscribe(m.UNIVERSE_CHANGED, "test", on_change)
        await host.start()
        try:
            uni = host.services["universe"]
            await wait_until(lambda: changes)
            assert changes[0].members == list(members)  # announced again, so every follower resumes it
            assert sorted(host.settings.symbols) == sorted(members)  # the host followed the announcement
            assert uni.refreshes == 0 and uni.selection is None and uni.next_due == next_due
            assert uni.state == state  # members and cooldowns (left_at) as stored
            doc = uni.describe()
            assert doc["restored"] is True and doc["members"] == list(members) and doc["pairs"] == pairs
            reason = next(p["reason"] for p in doc["pairs"] if p["symbol"] == leaver)
            assert reason.startswith("blacklisted")

            # the next refresh starts from the restored state: the leaver is still in its cooldown
            uni.cfg = parse_universe(yaml.safe_load(UNIVERSE))
            again = await uni.refresh()
            assert again is not None and leaver not in again.members
            assert next(p.reason for p in again.pairs if p.symbol == leaver).startswith("cooldown until")
        finally:
            await host.stop()
