"""Done-when test: the gateway service (Host, memory bus, SQLite) against the fake exchange with EVERY fault
on (drops, stalls, malformed/duplicated/swapped frames, REST 429/418/5xx) over 20 000 accelerated candles on
3 symbols. The store must equal the source exactly and each symbol's published sequence must be complete
and strictly increasing."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from roottrading.exchange.fake_binance import FakeBinanceConfig
from roottrading.store.repos_market import CandleRepo

from .helpers import gateway_env, wait_for

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
PER_SYMBOL = 6_667  # 20 001 candles in all


@pytest.mark.slow
async def test_gateway_under_every_fault_stores_and_publishes_the_exact_source(tmp_path: Path) -> None:
    cfg = FakeBinanceConfig(
        symbols=SYMBOLS,
        source="synthetic",
        synthetic_count=PER_SYMBOL,
        history_candles=300,
        speed=60 * 170,
        updates_per_candle=1,
        seed=5,
        drop_every_s=1.5,
        stall_every_s=0.8,
        stall_duration_s=0.4,
        malformed_prob=0.01,
        duplicate_prob=0.02,
        out_of_order_prob=0.02,
        rest_429_prob=0.03,
        rest_418_prob=0.02,
        rest_5xx_prob=0.05,
        fault_ban_s=1.0,
    )
    gateway = {
        "warmup_candles": PER_SYMBOL,
        "stale_after_s": 0.3,
        "backoff_initial_s": 0.02,
        "backoff_max_s": 0.2,
        "gap_grace_s": 0.2,
        "tick_interval_s": 0.1,
        "seed": 9,
    }
    async with gateway_env(tmp_path, cfg, gateway=gateway) as (host, col, fake):
        source = fake.market.series
        total = sum(len(s) for s in source.values())
        assert total >= 20_000
        t0 = time.monotonic()
        assert await wait_for(lambda: fake.market.finished.is_set() and col.count() >= total, 170, 0.25), (
            col.count(),
            total,
            host.services["gateway"].diagnostic(),
        )
        elapsed = time.monotonic() - t0
        gw = host.services["gateway"]
        await gw.writer.flush()  # write-behind: a candle is stored right AFTER it is published
        diag = gw.diagnostic()
        repo = CandleRepo(host.db)
        for sym in SYMBOLS:
            stored = await repo.range(sym, "1m")
            assert stored == source[sym], sym  # no gap, no duplicate, no altered value
            published = col.candles[sym]
            assert published == source[sym], sym  # complete, in order, values intact
            opens = [c.open_time for c in published]
            assert all(b > a for a, b in itertools.pairwise(opens))
            assert col.ticks.get(sym), "ticks are published too"
        limiter = fake.limiter.counts
    # The faults really happened and were handled.
    s = fake.stats
    assert s["drops"] >= 3 and s["stalls"] >= 3, dict(s)
    assert s["malformed"] > 0 and s["duplicates"] > 0 and s["out_of_order"] > 0, dict(s)
    assert limiter["429"] > 0 and limiter["418"] > 0 and limiter["5xx"] > 0, limiter
    assert limiter["while_banned"] == 0, "the gateway must wait out a ban, not hammer"
    conn = diag["connection"]
    assert conn["reconnects"] >= 5 and conn["malformed"] > 0
    syms = diag["symbols"]
    assert sum(v["duplicates_dropped"] for v in syms.values()) + conn["duplicates"] > 0
    assert sum(v["gaps_filled"] for v in syms.values()) > 0
    assert all(v["skipped"] == 0 for v in syms.values())
    print(
        f"\ngateway soak: {total} candles in {elapsed:.1f}s; server={dict(s)} rest={limiter} "
        f"reconnects={conn['reconnects']} backfilled={sum(v['backfilled'] for v in syms.values())} "
        f"gaps_filled={sum(v['gaps_filled'] for v in syms.values())}"
    )
