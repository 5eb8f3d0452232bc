"""Notifications through Apprise to a local HTTP receiver: the events, de-duplication, the rate limit, per-event
switches, a failing channel retried then logged, and submit() never waiting for a channel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from roottrading import messages as m
from roottrading.bus.memory import MemoryBus
from roottrading.clock import SimClock
from roottrading.config import ConfigError, load_settings
from roottrading.domain import CycleStatus, Order, OrderStatus, OrderType, Side, TradeCycle
from roottrading.notify import Alert, Notifier
from roottrading.runtime import Host
from tests.monitoring.receiver import Receiver

DAY = 86_400_000


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


async def until(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        await asyncio.sleep(0.02)
    return pred()


def _cycle(cid: str, status: CycleStatus, pnl: str | None = None) -> TradeCycle:
    return TradeCycle(
        id=cid,
        symbol="BTCUSDT",
        strategy="ema_cross",
        side=Side.BUY,
        status=status,
        created_at=1,
        updated_at=2,
        entry_price=Decimal(20000),
        quantity=Decimal("0.01"),
        profit_loss=None if pnl is None else Decimal(pnl),
        profit_loss_percent=None if pnl is None else Decimal("0.5"),
    )


def _health(t: int, **components: dict[str, object]) -> m.HealthReport:
    return m.HealthReport(time=t, status="ok", components=dict(components))


async def test_every_event_reaches_the_receiver_once(tmp_path: Path, receiver: Receiver) -> None:
    settings = load_settings(
        symbols="BTCUSDT",
        database_url=f"sqlite+aiosqlite:///{tmp_path}/n.db",
        api_token="t",
        data_dir=tmp_path,
        notify_urls=receiver.url(),
        notify_retries=1,
    )
    clock = SimClock(1_700_000_000_000)
    host = Host(settings, ["notify"], bus=MemoryBus(), clock=clock)
    await host.start()
    try:
        pub = host.ctx.publish
        await pub(m.CYCLE_UPDATES, _cycle("cy-1", CycleStatus.ACTIVE))
        await pub(m.CYCLE_UPDATES, _cycle("cy-1", CycleStatus.ACTIVE))  # re-announced: no second alert
        await pub(m.CYCLE_UPDATES, _cycle("cy-1", CycleStatus.COMPLETED, "12.5"))
        order = Order(
            client_order_id="rt1",
            symbol="BTCUSDT",
            side=Side.BUY,
            type=OrderType.MARKET,
            quantity=Decimal(1),
            status=OrderStatus.REJECTED,
            reject_reason="-2010: insufficient balance",
        )
        await pub(m.ORDER_UPDATES, m.OrderUpdate(event="REJECTED", order=order, time=5))
        kill = m.RiskEvent(time=6, rule="kill_switch", action="kill_switch", message="pulled by user")
        await pub(m.RISK_EVENTS, kill)
        await pub(m.RISK_EVENTS, kill)  # the same event again within the window: de-duplicated
        ok_gw = {"status": "ok", "connection": "connected"}
        await pub(m.SYSTEM_HEALTH, _health(10, gateway=ok_gw, trader={"status": "ok"}, portfolio={"status": "ok"}))
        await pub(
            m.SYSTEM_HEALTH,
            _health(
                20,
                gateway={"status": "degraded", "connection": "reconnecting"},
                trader={"status": "down", "error": "timeout"},
                portfolio={"status": "ok", "drift_warnings": ["USDT: exchange 100 vs ledger 90"]},
            ),
        )
        await pub(m.SYSTEM_HEALTH, _health(30, gateway=ok_gw, trader={"status": "ok"}, portfolio={"status": "ok"}))
        assert await host.bus.drain(5)
        clock.advance(DAY)
        await host.services["notify"].daily_summary()  # type: ignore[attr-defined]
        expected = {
            "Cycle opened: BTCUSDT ema_cross",
            "Cycle completed: BTCUSDT ema_cross",
            "Order rejected: BUY 1 BTCUSDT",
            "Risk kill_switch: kill_switch",
            "Market data disconnected",
            "gateway degraded",
            "trader down",
            "Reconciliation drift",
            "gateway recovered",
            "trader recovered",
            "Daily summary",
        }
        assert await until(lambda: set(receiver.titles()) >= expected), receiver.titles()
        await asyncio.sleep(0.2)
        titles = receiver.titles()
        assert sorted(titles) == sorted(expected), titles  # each once: nothing duplicated
        bodies = {b["title"]: b["message"] for _, b in receiver.received}
        assert "PnL 12.5" in bodies["Cycle completed: BTCUSDT ema_cross"]
        assert "1 cycles closed (1 won, 0 lost), realised PnL 12.5" in bodies["Daily summary"]
        assert "insufficient balance" in bodies["Order rejected: BUY 1 BTCUSDT"]
    finally:
        await host.stop()


async def test_a_failing_channel_is_retried_then_logged_and_never_blocks(receiver: Receiver) -> None:
    n = Notifier([receiver.url("/fail"), receiver.url("/ok")], retries=3, retry_backoff_s=0.01)
    n.start()
    try:
        t0 = time.perf_counter()
        assert n.submit(Alert("risk_event", "k1", "Risk pause", "daily loss"))
        assert time.perf_counter() - t0 < 0.005  # a queue put: the caller never waits for a channel
        assert await until(lambda: n.stats["failed"] == 1)
        assert receiver.titles("/ok") == ["Risk pause"]  # the healthy channel is not held back
        assert receiver.titles("/fail") == ["Risk pause"] * 3  # retried, then given up on
        assert n.stats["sent"] == 1
    finally:
        await n.stop()


async def test_rate_limit_and_per_event_switches(receiver: Receiver) -> None:
    clock = [0.0]
    n = Notifier([receiver.url()], events=["risk_event"], per_minute=2, monotonic=lambda: clock[0])
    sent = [n.submit(Alert("risk_event", f"k{i}", f"t{i}", "b")) for i in range(5)]
    assert sent == [True, True, False, False, False]
    assert n.stats["rate_limited"] == 3
    assert not n.submit(Alert("cycle_opened", "c1", "opened", "b"))  # switched off
    assert n.stats["filtered"] == 1
    clock[0] = 61.0  # a minute later the budget is back
    assert n.submit(Alert("risk_event", "k9", "t9", "b"))
    assert not n.submit(Alert("risk_event", "k9", "t9", "b"))  # and de-duplication still holds
    assert [a.title for a in n.recent] == ["t0", "t1", "t2", "t3", "t4", "t9"]  # the bell shows them all


def test_notify_settings_are_typed(tmp_path: Path) -> None:
    s = load_settings(data_dir=tmp_path, notify_urls="json://a/x  tgram://1:2/3", notify_events="cycle_closed")
    assert s.notify_urls == ["json://a/x", "tgram://1:2/3"] and s.notify_events == ["cycle_closed"]
    with pytest.raises(ConfigError, match="notify"):
        load_settings(data_dir=tmp_path, notify_events="cycle_closed,nope")
