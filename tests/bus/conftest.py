"""Bus fixtures: one `bus` fixture parametrised over every backend, so ONE contract suite checks them all."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from roottrading.bus.base import RetryPolicy
from roottrading.bus.memory import MemoryBus
from roottrading.bus.redis import RedisBus

FAST_RETRY = RetryPolicy(max_attempts=3, backoff_s=0.001, backoff_max_s=0.01)


def make_redis_bus(url: str, prefix: str, **kwargs: object) -> RedisBus:
    """A Redis bus tuned for tests: short blocks, leases and rebalancing so hand-overs take milliseconds."""
    opts: dict[str, object] = {"retry": FAST_RETRY, "block_ms": 20, "lease_ms": 600, "rebalance_ms": 20}
    opts.update(kwargs)
    return RedisBus(url, prefix=prefix, **opts)  # type: ignore[arg-type]


async def delete_prefix(url: str, prefix: str) -> None:
    r = aioredis.Redis.from_url(url)
    try:
        keys = [k async for k in r.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await r.delete(*keys)
    finally:
        await r.aclose()


@pytest.fixture(params=["memory", "redis"])
async def bus(request: pytest.FixtureRequest, unique: str) -> AsyncIterator[MemoryBus | RedisBus]:
    """A started bus of each backend; Redis gets a private stream prefix that is deleted afterwards."""
    if request.param == "memory":
        b: MemoryBus | RedisBus = MemoryBus(retry=FAST_RETRY)
        await b.start()
        yield b
        await b.close()
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"rt-test-{unique}"
    b = make_redis_bus(url, prefix)
    await b.start()
    try:
        yield b
    finally:
        await b.close()
        await delete_prefix(url, prefix)
