"""Trader test harness: a Host with only the trader, a SimEngine with the real BTCUSDT rules, a SimClock.

Tests drive the service through its bus handlers (same code path as production) and read the exchange
directly, so every assertion compares the trader's store with the simulated exchange's own books."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from roottrading import messages as m
from roottrading.clock import SimClock
from roottrading.config import load_settings
from roottrading.domain import Candle, OrderRequest, OrderType, Side
from roottrading.exchange.sim import SimConfig, SimEngine, SimExchange
from roottrading.runtime import Host, Wiring
from roottrading.services.trader.exchange_factory import btcusdt_rules

D = Decimal
SYM = "BTCUSDT"
T0 = 1_700_000_000_000
MIN = 60_000


def candle(i: int, o: float, h: float, lo: float, c: float, vol: float = 1000.0) -> Candle:
    return Candle(
        symbol=SYM,
        interval="1m",
        open_time=T0 + i * MIN,
        close_time=T0 + (i + 1) * MIN - 1,
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=vol,
    )


def req(
    rid: str,
    side: Side = Side.BUY,
    *,
    qty: str | None = "0.01",
    type: OrderType = OrderType.MARKET,
    price: str | None = None,
    strategy: str = "s1",
    **kw: Any,
) -> OrderRequest:
    return OrderRequest(
        id=rid,
        time=T0,
        symbol=SYM,
        side=side,
        type=type,
        quantity=D(qty) if qty else None,
        price=D(price) if price else None,
        strategy=strategy,
        **kw,
    )


@dataclass
class Rig:
    tmp: Path
    engine: SimEngine
    clock: SimClock
    host: Host | None = None
    exchange: Any = None
    i: int = 0
    tuning: dict[str, Any] = field(default_factory=dict)  # settings over the harness's (config_tuning.py)
    wiring: Wiring = field(default_factory=Wiring)  # objects for the other services (the exchange is set here)
    feed_exchange: bool = True  # False: the exchange has its own market (live-like)
    services: list[str] = field(default_factory=lambda: ["trader"])

    @property
    def svc(self) -> Any:
        assert self.host is not None
        return self.host.services["trader"]

    @property
    def core(self) -> Any:
        return self.svc.core

    async def start(self, exchange: Any = None) -> Rig:
        tuning: dict[str, Any] = {"trader_reconcile_s": 3600, "trader_balances_s": 3600, **self.tuning}
        settings = load_settings(
            symbols=SYM, database_url=f"sqlite+aiosqlite:///{self.tmp}/t.db", api_token="t", data_dir=self.tmp, **tuning
        )
        self.exchange = exchange or SimExchange(self.engine, self.clock)
        wiring = dataclasses.replace(self.wiring, exchange=self.exchange, feed_exchange=self.feed_exchange)
        self.host = Host(settings, self.services, clock=self.clock, wiring=wiring)
        await self.host.start()
        return self

    async def stop(self) -> None:
        if self.host is not None and self.host.started:
            await self.host.stop()

    async def bar(self, o: float, h: float, lo: float, c: float, vol: float = 1000.0) -> None:
        """Next 1m candle through the trader's own handler (it feeds the engine, then checks exits)."""
        cd = candle(self.i, o, h, lo, c, vol)
        self.i += 1
        self.clock.set(max(self.clock.now_ms(), cd.close_time))
        await self.svc.on_candle(m.Message(id=cd.key, topic=m.candles_topic(SYM), key=SYM, ts=0, payload=cd))

    async def send(self, r: OrderRequest) -> None:
        await self.svc.on_request(m.Message(id=r.id, topic=m.ORDER_REQUESTS, key=SYM, ts=0, payload=r))

    async def cycle(self, cycle_id: str) -> Any:
        return await self.svc.cycles.get(cycle_id)

    def published(self, topic: str) -> list[Any]:
        assert self.host is not None
        return [msg.payload for msg in self.host.bus.retained_messages(topic)]


async def reserve(rig: Rig, reservation_id: str, amount: Decimal = Decimal(1000)) -> None:
    """A live pocket reservation in the trader's store, as the coordinator makes before sending a request
    (the trader claims it when it stores the cycle, and refuses an entry whose reservation is not live)."""
    from roottrading.capital.ledger import PocketLedger

    assert rig.host is not None
    ledger = PocketLedger(rig.host.db, rig.clock, {"active": D(60), "buffer": D(30), "safety": D(10)})
    await ledger.ensure_initialised(D(10_000))
    await ledger.reserve(reservation_id, amount, pocket="active", reason="test entry")


def new_engine(usdt: str = "10000", config: SimConfig | None = None, price: str = "20000") -> SimEngine:
    eng = SimEngine([btcusdt_rules()], config or SimConfig(), {"USDT": D(usdt)}, start_time=T0 - MIN)
    eng.on_trade(SYM, T0 - MIN, D(price))
    return eng


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    r = Rig(tmp_path, new_engine(), SimClock(T0 - MIN))
    await r.start()
    r.core.last_price[SYM] = D("20000")
    try:
        yield r
    finally:
        await r.stop()
