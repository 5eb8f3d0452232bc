"""Issue 18: a strategy change asked on one analyzer instance (PUT /strategies/{name}) reaches every other one,
through `control.strategies` read by each instance in a group of its own (real Redis)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from roottrading.config import load_settings
from roottrading.runtime import Host
from roottrading.runtime.http import build_app
from tests.bus.conftest import delete_prefix, make_redis_bus


async def test_a_strategy_disabled_on_one_analyzer_is_disabled_on_the_other(
    tmp_path: Path, redis_url: str, unique: str
) -> None:
    prefix = f"rt-an-{unique}"
    settings = load_settings(
        symbols="BTCUSDT", database_url=f"sqlite+aiosqlite:///{tmp_path}/a.db", api_token="t", data_dir=tmp_path
    )
    hosts = [Host(settings, ["analyzer"], bus=make_redis_bus(redis_url, prefix)) for _ in range(2)]
    for name, h in zip("ab", hosts, strict=True):
        h.instance = f"analyzer-{name}"
    try:
        for h in hosts:
            await h.start()
        a: Any = hosts[0].services["analyzer"]
        b: Any = hosts[1].services["analyzer"]

        def enabled(svc: Any) -> bool:
            return next(d for d in svc.describe_strategies() if d["name"] == "ema_cross")["enabled"]

        assert enabled(a) and enabled(b)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(hosts[0])), base_url="http://t") as c:
            r = await c.put(
                "/api/analyzer/strategies/ema_cross", json={"enabled": False}, headers={"Authorization": "Bearer t"}
            )
            assert r.status_code == 200
        assert not enabled(a)
        deadline = time.monotonic() + 10
        while enabled(b):
            assert time.monotonic() < deadline, "the change never reached the other analyzer"
            await asyncio.sleep(0.02)
        assert b.relay.applied == 1 and a.relay.applied == 0  # a skipped its own message
    finally:
        for h in hosts:
            await h.stop()
        await delete_prefix(redis_url, prefix)
