"""Issue 18, several traders: two `python -m roottrading service trader` processes on Redis Streams + PostgreSQL
against the fake Binance, as a new user would run them.

(a) Requests flow (entries with stops, exits by request, ~10/s) while the trader that owns the symbol is SIGKILLed
    with exits in flight, twice; the other takes the symbol over (loads its open cycles, reconciles), the killed
    one restarts. Then the soak's exact audit (trader_soak_support.audit): no client order id twice on the
    exchange, every exchange order is a trader record and vice versa with the same status and executed quantity,
    every trade is a stored fill and vice versa, balances == initial + fills - commissions to the last unit, every
    BUY request exactly one cycle.
(b) The kill switch pulled (a risk event, as the risk manager publishes it) with two traders running: both stop
    (the event is broadcast to every instance), neither sends a new entry, also after the owner is SIGKILLed
    and the other takes over.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from roottrading import ids
from roottrading import messages as m
from roottrading.bus import partition_of
from roottrading.bus.redis import RedisBus
from roottrading.domain import OrderRequest, OrderType, Side
from roottrading.store import Database

from .conftest import free_port
from .test_trader_soak import backlog, price_feed
from .trader_soak_support import (
    NEWEST_INTENT_SQL,
    SYMBOL,
    FakeBinance,
    Trader,
    audit,
    make_request,
    read_postgres,
    wait_past_resend_guard,
)

PARTITIONS = 4  # RedisBus default, as the service processes use it
N_REQUESTS = 300
PUBLISH_S = 30.0


@pytest.fixture
def pg_database(postgres_url: str, unique: str) -> Iterator[str]:
    name = f"rt_two_traders_{unique}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def pg_value(dsn: str, sql: str) -> Any:
    con = await asyncpg.connect(dsn.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return await con.fetchval(sql)
    finally:
        await con.close()


@dataclass
class Platform:
    fake: FakeBinance
    bus: RedisBus
    traders: dict[str, Trader]
    db: str

    def owner(self) -> str | None:
        """The trader whose bus consumer holds the symbol's partition of order.requests and has taken it over
        (open cycles loaded, reconciled), from its /health."""
        p = partition_of(SYMBOL, PARTITIONS)
        for name, t in self.traders.items():
            h = t.health() or {}
            owns = h.get("owns")
            if isinstance(owns, list) and p in owns and h.get("takeovers", 0) >= 1 and t.alive():
                return name
        return None

    async def wait_owner(self, exclude: str | None = None, deadline_s: float = 40) -> str:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            name = await asyncio.to_thread(self.owner)
            if name is not None and name != exclude:
                return name
            await asyncio.sleep(0.2)
        logs = {n: t.log.read_text(errors="replace")[-2000:] for n, t in self.traders.items()}
        raise AssertionError(f"no trader (other than {exclude}) took the symbol over: {logs}")


@pytest.fixture
async def platform(tmp_path: Path, redis_url: str, pg_database: str, unique: str) -> AsyncIterator[Platform]:
    fake = FakeBinance(free_port(), tmp_path / "engine.json", tmp_path / "fake.log")
    fake.start(faults=True)  # the soak's faults: unanswered orders, 5xx, -1021, user-stream drops
    prefix = f"two{unique}"
    bus = RedisBus(redis_url, prefix=prefix)
    await bus.start()
    traders = {
        n: Trader(
            tmp_path,
            free_port(),
            fake.url,
            redis_url,
            prefix,
            tmp_path / f"trader{n}.log",
            database_url=pg_database,
            instance=f"trader{n}",
        )
        for n in "AB"
    }
    db = Database(pg_database)  # migrated once before the processes start, as `up --split` does
    await db.migrate()
    await db.close()
    try:
        for t in traders.values():
            t.start()
        for t in traders.values():
            await asyncio.to_thread(t.wait_ready, 40)
        yield Platform(fake, bus, traders, pg_database)
    finally:
        for t in traders.values():
            if t.alive():
                t.proc.kill()  # type: ignore[union-attr]
                t.proc.wait()  # type: ignore[union-attr]
        fake.stop()
        await bus.redis.delete(*[k async for k in bus.redis.scan_iter(f"{prefix}:*")] or ["-"])
        await bus.close()


async def publish_requests(bus: RedisBus, last: dict[str, object], buys: list[str], n: int) -> None:
    while "price" not in last:
        await asyncio.sleep(0.05)
    t0 = time.monotonic()
    for i in range(n):
        req = make_request(i, Decimal(str(last["price"])), int(time.time() * 1000))
        if req.side is Side.BUY:
            buys.append(req.id)
        await bus.publish(m.ORDER_REQUESTS, req, key=SYMBOL, msg_id=req.id)
        await asyncio.sleep(max(0.0, t0 + (i + 1) * PUBLISH_S / n - time.monotonic()))


async def handled(t: Trader) -> int:
    return int(((await asyncio.to_thread(t.health)) or {}).get("requests", 0))


@pytest.mark.slow
async def test_two_traders_owner_sigkilled_with_exits_in_flight_exact_audit(platform: Platform) -> None:
    rng = random.Random(18)
    pf, bus = platform, platform.bus
    stop_feed = asyncio.Event()
    last: dict[str, object] = {}
    buys: list[str] = []
    feed = asyncio.create_task(price_feed(pf.fake, bus, stop_feed, last))
    pub = asyncio.create_task(publish_requests(bus, last, buys, N_REQUESTS))
    kills: list[str] = []
    started = time.monotonic()
    try:
        # 1. twice: the owner works a few seconds (entries, stops, exits in flight), is SIGKILLed; the other
        #    takes the symbol over (after the dead lease expires), the killed one restarts as the standby
        for _ in range(2):
            owner = await pf.wait_owner()
            t = pf.traders[owner]
            base = await handled(t)
            while await handled(t) < base + 20:
                assert time.monotonic() - started < 120, "the owner handles no requests"
                await asyncio.sleep(0.2)
            await asyncio.sleep(rng.uniform(0.5, 2.5))
            t.kill()
            kills.append(owner)
            await pf.wait_owner(exclude=owner)  # the other took the symbol over (loaded, reconciled)
            t.start()
            await asyncio.to_thread(t.wait_ready, 40)
        await pub
        while await backlog(bus, m.ORDER_REQUESTS):
            assert time.monotonic() - started < 200, f"requests not handled in time; kills={kills}"
            await asyncio.sleep(0.3)
        stop_feed.set()
        await feed
        pf.fake.stop()  # faults off for the settling, as in the soak (the simulator restarts from its state)
        pf.fake.start(faults=False)
        # 2. settle as the soak does: cancel what rests; once the newest intent is older than the re-send guard,
        #    one trader takes the symbol over and reconciles everything (re-sends what never left)
        for t in pf.traders.values():
            t.stop()
        for _ in range(4):
            await asyncio.to_thread(pf.fake.signed, "DELETE", "/api/v3/openOrders", {"symbol": SYMBOL})
            await asyncio.to_thread(wait_past_resend_guard, await pg_value(pf.db, NEWEST_INTENT_SQL))
            a = pf.traders["A"]
            a.start()
            await asyncio.to_thread(a.wait_ready, 40)
            await asyncio.to_thread(a.wait_owner, 40)
            await asyncio.sleep(1.0)  # user-stream events of the cancels, the re-sent intents' answers
            a.stop()
            if not await asyncio.to_thread(pf.fake.signed, "GET", "/api/v3/openOrders", {"symbol": SYMBOL}):
                break
        orders = await asyncio.to_thread(pf.fake.all_orders)
        trades = await asyncio.to_thread(pf.fake.my_trades)
        account = await asyncio.to_thread(pf.fake.signed, "GET", "/api/v3/account", {})
        store = await read_postgres(pf.db)
    finally:
        stop_feed.set()
        pub.cancel()
    result = audit(store, orders, trades, account, buys)
    logs = {n: t.log.read_text(errors="replace") for n, t in pf.traders.items()}
    print(
        f"\ntwo traders: {N_REQUESTS} requests ({len(buys)} BUY), SIGKILLed {kills}, "
        f"{time.monotonic() - started:.1f}s\n  {result.counts}\n  takeovers logged: "
        f"{ {n: log.count('partitions taken over') for n, log in logs.items()} }"
    )
    assert not result.problems, "\n".join(result.problems)
    assert len(kills) == 2
    assert result.counts["trades"] > 50 and result.counts["exchange_orders"] > 100  # it really traded
    sells = [o for o in orders if o["side"] == "SELL"]
    assert len(sells) > 20  # exits did happen (by request and by stops)


@pytest.mark.slow
async def test_kill_switch_with_two_traders_no_new_entry(platform: Platform) -> None:
    pf, bus = platform, platform.bus
    stop_feed = asyncio.Event()
    last: dict[str, object] = {}
    feed = asyncio.create_task(price_feed(pf.fake, bus, stop_feed, last))
    try:
        while "price" not in last:
            await asyncio.sleep(0.05)

        def buy(rid: str) -> OrderRequest:
            return OrderRequest(
                id=rid,
                time=int(time.time() * 1000),
                symbol=SYMBOL,
                side=Side.BUY,
                type=OrderType.MARKET,
                quantity=Decimal("0.001"),
                strategy="alpha",
            )

        owner = await pf.wait_owner()
        await bus.publish(m.ORDER_REQUESTS, buy("before-kill"), key=SYMBOL, msg_id="before-kill")
        while await pg_value(pf.db, "SELECT count(*) FROM trade_fills") == 0:
            await asyncio.sleep(0.2)  # trading works before the switch
        ev = m.RiskEvent(time=int(time.time() * 1000), rule="kill_switch", action="kill_switch", message="test")
        await bus.publish(m.RISK_EVENTS, ev, key="kill_switch")
        deadline = time.monotonic() + 20
        while not all((t.health() or {}).get("killed") for t in pf.traders.values()):
            assert time.monotonic() < deadline, "the kill switch did not reach both traders"
            await asyncio.sleep(0.2)
        # positions closed by the owner (the other owns no cycle), then no entry from anyone
        after: list[str] = []
        for i in range(5):
            rid = f"after-kill-{i}"
            after.append(rid)
            await bus.publish(m.ORDER_REQUESTS, buy(rid), key=SYMBOL, msg_id=rid)
        while await backlog(bus, m.ORDER_REQUESTS):
            await asyncio.sleep(0.2)
        # the owner dies; the other takes the symbol over, killed as well: still no entry
        pf.traders[owner].kill()
        survivor = await pf.wait_owner(exclude=owner)
        assert (pf.traders[survivor].health() or {}).get("killed") is True
        for i in range(5, 8):
            rid = f"after-kill-{i}"
            after.append(rid)
            await bus.publish(m.ORDER_REQUESTS, buy(rid), key=SYMBOL, msg_id=rid)
        while await backlog(bus, m.ORDER_REQUESTS):
            await asyncio.sleep(0.2)
        orders = await asyncio.to_thread(pf.fake.all_orders)
        sent = {o["clientOrderId"] for o in orders}
        entries = {ids.client_order_id(rid, "entry") for rid in after}
        assert not (sent & entries), "an entry was sent after the kill switch"
        store = await read_postgres(pf.db)
        statuses = {store.cycles.get(ids.cycle_id(rid)) for rid in after}
        assert statuses == {"CANCELED"}, statuses  # recorded, refused: "trading paused: entry not sent"
        first = store.cycles.get(ids.cycle_id("before-kill"))
        assert first in ("COMPLETED", "WAITING_EXIT"), first  # the kill switch closes the open position
    finally:
        stop_feed.set()
        await feed
