"""A consumer run in its own process by test_redis_failover.py, so the test can SIGKILL it mid-stream.

usage: python consumer_proc.py URL PREFIX TOPIC GROUP LEASE_MS
Its handler is idempotent (dedupe on message id, atomically in Redis) and records what it applied."""

from __future__ import annotations

import asyncio
import sys

from roottrading import messages as m
from roottrading.bus.base import RetryPolicy
from roottrading.bus.redis import RedisBus

# dedupe on message id, then apply (append seq to the key's list); count every delivery, even duplicates
APPLY = """
redis.call('incr', KEYS[3])
if redis.call('sadd', KEYS[1], ARGV[1]) == 1 then
  redis.call('rpush', KEYS[2], ARGV[2])
  redis.call('incr', KEYS[4])
end
return 1
"""


def make_handler(bus: RedisBus, prefix: str, delay: float):  # type: ignore[no-untyped-def]
    async def handler(msg: m.Message) -> None:
        await asyncio.sleep(delay)
        keys = [f"{prefix}:seen", f"{prefix}:applied:{msg.key}", f"{prefix}:deliveries", f"{prefix}:applied"]
        await bus.redis.eval(APPLY, 4, *keys, msg.id, msg.payload.seq)

    return handler


async def main(url: str, prefix: str, topic: str, group: str, lease_ms: int) -> None:
    bus = RedisBus(
        url,
        prefix=prefix,
        lease_ms=lease_ms,
        block_ms=20,
        rebalance_ms=20,
        retry=RetryPolicy(max_attempts=5, backoff_s=0.001),
    )
    await bus.start()
    await bus.subscribe(topic, group, make_handler(bus, prefix, 0.002), consumer="child")
    print("subscribed", flush=True)
    await asyncio.Event().wait()  # run until killed


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
