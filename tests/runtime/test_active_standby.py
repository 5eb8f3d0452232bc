"""Issue 18: several risk and portfolio instances, active/standby on a leader lease (runtime/leader.py), on the
real Redis (the lease, the broadcast groups) and PostgreSQL (the shared store: safety_state, ledger, cycles).

Two instances run in one process, each with its own bus connection and database engine, like two processes.
A failed leader is simulated by stopping its renewals (`freeze`: a stalled process) or making them fail (`cut_off`:
Redis unreachable for it alone): it keeps running and would act if the fencing did not stop it, which is the
case the lease must make safe. A sampler
checks every few ms that the two are never leaders at the same instant, and that the standby became leader
only after the old one had stopped acting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from roottrading.bus.redis import RedisBus
from roottrading.clock import SimClock
from roottrading.config import load_settings
from roottrading.domain import CycleStatus, Side, TradeCycle
from roottrading.risk import OrderIntent
from roottrading.runtime.host import Host
from roottrading.runtime.http import build_app
from roottrading.runtime.leader import NotLeader, RedisLeaderLease
from roottrading.services.coordinator import risk_client as rc
from roottrading.store import CycleRepo, Database
from tests.waiting import eventually

LEASE_MS = 1500
T0 = 1_700_000_000_000
TOKEN = "t" * 32


@dataclass
class Pair:
    hosts: list[Host]
    service: str

    def svc(self, i: int) -> Any:
        return self.hosts[i].services[self.service]

    def lead(self, i: int) -> RedisLeaderLease:
        lead = self.svc(i).lead
        assert isinstance(lead, RedisLeaderLease)
        return lead

    def leaders(self) -> list[int]:
        return [i for i in range(len(self.hosts)) if self.svc(i).lead.is_leader()]


@dataclass
class Sampler:
    """Who is leader, every 2 ms: never two at once; records when each instance led last/first."""

    pair: Pair
    overlaps: int = 0
    last_led: dict[int, float] = field(default_factory=dict)
    first_led: dict[int, float] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        while True:
            now = time.monotonic()
            who = self.pair.leaders()
            self.overlaps += len(who) > 1
            for i in who:
                self.last_led[i] = now
                self.first_led.setdefault(i, now)
            await asyncio.sleep(0.002)

    def __enter__(self) -> Sampler:
        self.task = asyncio.create_task(self.run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()


async def make_pair(
    tmp_path: Path, redis_url: str, postgres_url: str, unique: str, service: str, clock: Callable[[], SimClock]
) -> Pair:
    settings = load_settings(
        symbols="BTCUSDT",
        database_url=postgres_url,
        api_token=TOKEN,
        data_dir=tmp_path,
        risk_reload_s=3600,
        portfolio_reallocate_s=3600,
        portfolio_reconcile_s=3600,
    )
    hosts = []
    for i in range(2):
        bus = RedisBus(redis_url, prefix=f"sb{unique}", lease_ms=LEASE_MS)
        host = Host(settings, [service], bus=bus, db=Database(postgres_url, schema=f"sb_{unique}"), clock=clock())
        host.instance = f"{service}-{'ab'[i]}"
        await host.start()  # A first: A is the leader; B starts as a standby
        hosts.append(host)
    return Pair(hosts, service)


async def drop_schema(postgres_url: str, unique: str) -> None:
    db = Database(postgres_url, schema=f"sb_{unique}")
    try:
        await db.drop_schema()
    finally:
        await db.close()


@pytest.fixture
async def pairs(tmp_path: Path, redis_url: str, postgres_url: str, unique: str) -> AsyncIterator[list[Pair]]:
    made: list[Pair] = []

    async def stop() -> None:
        for p in made:
            for h in p.hosts:
                await h.stop()
        await drop_schema(postgres_url, unique)

    made.append(await make_pair(tmp_path, redis_url, postgres_url, unique, "risk", lambda: SimClock(T0)))
    try:
        yield made
    finally:
        await stop()


def cut_off(lead: RedisLeaderLease) -> None:
    """Redis becomes unreachable for this instance alone: every renewal fails from now on."""

    async def down(*_a: Any, **_kw: Any) -> Any:
        raise RedisConnectionError("cut off (test)")

    lead._renew = down  # type: ignore[method-assign]
    lead.redis = type("Down", (), {"set": down, "get": down})()


def freeze(lead: RedisLeaderLease) -> None:
    """The instance stops renewing altogether (a stalled loop, a process frozen between two renewals): only the
    local deadline (fencing) can stop it from acting."""
    assert lead._task is not None
    lead._task.cancel()


def entry(i: str) -> OrderIntent:
    return OrderIntent(
        id=i, symbol="BTCUSDT", side=Side.BUY, quantity=D("0.001"), price=D(100), strategy="ema", time=T0
    )


async def test_risk_standby_takes_over_and_keeps_the_kill_switch(pairs: list[Pair]) -> None:
    risk = pairs[0]
    a, b = risk.svc(0), risk.svc(1)
    assert risk.leaders() == [0]
    assert (await entry_decision(a, "e0")).allowed
    with pytest.raises(NotLeader) as standby:
        await b.check(entry("e1"))  # a standby never judges an order
    assert standby.value.leader == risk.lead(0).holder  # and names the leader

    await a.kill_switch()  # stored (safety_state) before it is announced
    with Sampler(risk) as s:
        freeze(risk.lead(0))
        t_cut = time.monotonic()
        await eventually(lambda: risk.leaders() == [1], timeout=LEASE_MS / 1000 + 3, what="B took over")
        took = time.monotonic() - t_cut
        # the sampler runs every 2 ms, but on a loaded machine it may not have run since B took over
        await eventually(lambda: 1 in s.first_led, timeout=5, what="the sampler saw B lead")
    assert s.overlaps == 0, "two risk leaders acted at the same instant"
    assert s.last_led[0] < s.first_led[1]  # A stopped acting before B started
    assert took < LEASE_MS / 1000 + 1.0, f"takeover took {took:.2f} s for a {LEASE_MS} ms lease"
    with pytest.raises(NotLeader):
        await a.check(entry("e2"))  # the fenced old leader refuses to judge
    decision = await entry_decision(b, "e3")  # B reloaded the stored kill switch before acting
    assert not decision.allowed and b.state_view().killed
    assert risk.lead(1).elections == 1


async def entry_decision(svc: Any, i: str) -> Any:
    return await svc.check(entry(i))


async def test_coordinator_client_finds_the_leader_among_the_urls(pairs: list[Pair], monkeypatch: Any) -> None:
    risk = pairs[0]
    apps = {"risk-a": build_app(risk.hosts[0], per_service=True), "risk-b": build_app(risk.hosts[1], per_service=True)}
    dead: set[str] = set()

    class Route(httpx.AsyncBaseTransport):
        """risk-a / risk-b to their app; a dead one does not answer."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            host = request.url.host
            if host in dead:
                raise httpx.ConnectError("connection refused (test)", request=request)
            return await httpx.ASGITransport(app=apps[host]).handle_async_request(request)

    real = httpx.AsyncClient
    monkeypatch.setattr(rc.httpx, "AsyncClient", lambda **kw: real(transport=Route(), **kw))
    settings = risk.hosts[0].settings
    client = rc.RiskClient(
        type("Ctx", (), {"settings": settings, "peer": staticmethod(lambda _n: None)})(),
        url="http://risk-b:5007, http://risk-a:5007",  # the standby first: it answers 503, the next is asked
    )
    try:
        assert (await client.check(entry("h1"))).allowed
        assert client.url == "http://risk-a:5007"  # remembered: the next check goes straight to the leader
        cut_off(risk.lead(0))
        dead.add("risk-a")  # the leader's process is gone
        await eventually(lambda: risk.leaders() == [1], timeout=LEASE_MS / 1000 + 3, what="B took over")
        assert (await client.check(entry("h2"))).allowed
        assert client.url == "http://risk-b:5007"
        dead.add("risk-b")
        with pytest.raises(rc.RiskUnavailable, match=r"risk-a.*risk-b|risk-b.*risk-a"):
            await client.check(entry("h3"))
    finally:
        await client.close()


async def test_coordinator_client_waits_for_the_election_instead_of_failing(
    pairs: list[Pair], monkeypatch: Any
) -> None:
    """The leader's process dies: until the standby holds the lease every URL fails (refused, 503). The check
    waits for the election instead of failing (which opened the coordinator's risk circuit for 30 s in the HA
    test and rejected every entry meanwhile); with no standby at all it still fails at once."""
    risk = pairs[0]
    apps = {"risk-a": build_app(risk.hosts[0], per_service=True), "risk-b": build_app(risk.hosts[1], per_service=True)}
    dead: set[str] = set()

    class Route(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.host in dead:
                raise httpx.ConnectError("connection refused (test)", request=request)
            return await httpx.ASGITransport(app=apps[request.url.host]).handle_async_request(request)

    real = httpx.AsyncClient
    monkeypatch.setattr(rc.httpx, "AsyncClient", lambda **kw: real(transport=Route(), **kw))
    ctx = type("Ctx", (), {"settings": risk.hosts[0].settings, "peer": staticmethod(lambda _n: None)})()
    client = rc.RiskClient(ctx, url="http://risk-a:5007,http://risk-b:5007", failover_wait_s=LEASE_MS / 1000 + 3)
    try:
        assert (await client.check(entry("w1"))).allowed and client.url == "http://risk-a:5007"
        cut_off(risk.lead(0))
        dead.add("risk-a")
        assert risk.leaders() != [1]  # B does not lead yet: its first answer is 503
        assert (await client.check(entry("w2"))).allowed  # waited for B's election
        assert client.url == "http://risk-b:5007" and client.failovers_waited == 1
        dead.add("risk-b")  # nobody answers at all: no standby to wait for
        t0 = time.monotonic()
        with pytest.raises(rc.RiskUnavailable):
            await client.check(entry("w3"))
        assert time.monotonic() - t0 < 1.0
    finally:
        await client.close()


async def test_a_clean_stop_hands_the_lease_over_at_once(pairs: list[Pair]) -> None:
    risk = pairs[0]
    await risk.hosts[0].stop()  # the lease is deleted: B needs one renewal period, not a whole lease
    t0 = time.monotonic()
    await eventually(lambda: risk.svc(1).lead.is_leader(), timeout=LEASE_MS / 1000 + 3, what="B took over")
    assert time.monotonic() - t0 < LEASE_MS / 1000
    pairs[0] = Pair(risk.hosts[1:], "risk")  # A is already stopped


@pytest.fixture
async def portfolios(tmp_path: Path, redis_url: str, postgres_url: str, unique: str) -> AsyncIterator[Pair]:
    clock = SimClock(T0)
    pair = await make_pair(tmp_path, redis_url, postgres_url, unique, "portfolio", lambda: clock)
    try:
        yield pair
    finally:
        for h in pair.hosts:
            await h.stop()
        await drop_schema(postgres_url, unique)


async def finished_cycle(host: Host, cycle_id: str, reservation: str) -> None:
    """A cycle completed with a profit of 5 while its reservation is still live (the coordinator died)."""
    await CycleRepo(host.db).save(
        TradeCycle(
            id=cycle_id,
            symbol="BTCUSDT",
            strategy="ema",
            side=Side.BUY,
            status=CycleStatus.COMPLETED,
            created_at=T0,
            updated_at=T0,
            entry_price=D(100),
            exit_price=D(105),
            quantity=D(1),
            profit_loss=D(5),
            reservation_id=reservation,
        )
    )


async def test_portfolio_settles_each_reservation_once_across_a_takeover(portfolios: Pair) -> None:
    pf = portfolios
    a, b = pf.svc(0), pf.svc(1)
    assert pf.leaders() == [0]
    clock: SimClock = pf.hosts[0].clock  # type: ignore[assignment]
    total_before = sum((p.current_value for p in await a.ledger.pockets()), D(0))
    await a.ledger.reserve("r1", D(100), reason="cycle c1")
    await finished_cycle(pf.hosts[0], "c1", "r1")
    clock.advance(3_600_000)

    with pytest.raises(NotLeader):
        await b.reconcile()  # a standby never settles
    await b._leader_reconcile()  # its periodic job is a no-op, not a second settlement
    assert (await b.ledger.get("r1")).status == "reserved"
    report = await a.reconcile()
    assert [x["reservation"] for x in report["released"]] == ["r1"]

    await a.ledger.reserve("r2", D(100), reason="cycle c2")
    await finished_cycle(pf.hosts[0], "c2", "r2")
    clock.advance(3_600_000)
    with Sampler(pf) as s:
        cut_off(pf.lead(0))
        await eventually(lambda: pf.leaders() == [1], timeout=LEASE_MS / 1000 + 3, what="B took over")
        # the sampler runs every 2 ms, but on a loaded machine it may not have run since B took over (CI: KeyError 1)
        await eventually(lambda: 1 in s.first_led, timeout=5, what="the sampler saw B lead")
    assert s.overlaps == 0 and s.last_led[0] < s.first_led[1]
    await a._leader_reconcile()  # the fenced old leader's job does nothing
    assert (await a.ledger.get("r2")).status == "reserved"
    report = await b.reconcile()
    assert [x["reservation"] for x in report["released"]] == ["r2"]
    assert (await b.reconcile())["released"] == []  # settled once: a second run finds nothing
    pockets = await b.ledger.pockets()
    assert sum((p.used_value for p in pockets), D(0)) == 0
    # both cycles' profit (5 each) credited exactly once
    assert sum((p.current_value for p in pockets), D(0)) == total_before + 10
