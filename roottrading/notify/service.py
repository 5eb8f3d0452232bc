"""Notify service: turns bus events into alerts for NOTIFY_URLS (Apprise) and the dashboard's bell.

It only consumes low-volume topics (cycles, order updates, risk events, the health report); handlers build an
alert and `submit()` it (a queue put), so a slow or failing channel never holds a bus consumer, let alone the
trader. With NOTIFY_URLS empty it still keeps the recent alerts for `GET .../events` (the bell).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Query

from roottrading import messages as m
from roottrading.domain.trading import TradeCycle
from roottrading.notify.events import Alert, AlertBuilder
from roottrading.notify.sender import Notifier
from roottrading.runtime.service import Consumes, HealthStatus, Job, Service

DAY_MS = 86_400_000


@dataclass
class _DayStats:
    closed: int = 0
    wins: int = 0
    losses: int = 0
    pnl: Decimal = Decimal(0)


class NotifyService(Service):
    name = "notify"
    description = "Alerts (cycles, rejections, risk, health, drift, daily summary) to Apprise URLs and the bell."

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        s = ctx.settings
        self.notifier = Notifier(
            s.notify_urls,
            events=s.notify_events,
            dedupe_s=s.notify_dedupe_s,
            per_minute=s.notify_rate_per_min,
            retries=s.notify_retries,
        )
        self.builder = AlertBuilder()
        self.day: int | None = None
        self.day_stats = _DayStats()

    def consumes(self) -> list[Consumes]:
        return [
            Consumes(m.CYCLE_UPDATES, self.on_message),
            Consumes(m.ORDER_UPDATES, self.on_message),
            Consumes(m.RISK_EVENTS, self.on_message),
            Consumes(m.SYSTEM_HEALTH, self.on_message),
        ]

    def jobs(self) -> list[Job]:
        return [Job("daily-summary", 60.0, self.daily_summary, run_at_start=True)]

    async def start(self) -> None:
        self.day = self.ctx.clock.now_ms() // DAY_MS
        self.notifier.start()

    async def stop(self) -> None:
        await self.notifier.stop()

    async def on_message(self, msg: m.Message) -> None:
        if msg.topic == m.CYCLE_UPDATES:
            self._count(msg.payload)
        for alert in self.builder.from_message(msg):
            self.notifier.submit(alert)

    def _count(self, c: TradeCycle) -> None:
        if c.status.value != "COMPLETED" or c.profit_loss is None:
            return
        key = f"counted:{c.id}"
        if key in self.notifier.seen:
            return
        self.notifier.seen[key] = float("inf")
        st = self.day_stats
        st.closed += 1
        st.wins, st.losses = (st.wins + 1, st.losses) if c.profit_loss > 0 else (st.wins, st.losses + 1)
        st.pnl += c.profit_loss

    async def daily_summary(self) -> Alert | None:
        """At the first run after 00:00 UTC (platform clock): yesterday's closed cycles, wins, losses, PnL."""
        today = self.ctx.clock.now_ms() // DAY_MS
        if self.day is None or today <= self.day:
            return None
        st, day = self.day_stats, self.day
        self.day, self.day_stats = today, _DayStats()
        alert = Alert(
            "daily_summary",
            f"daily:{day}",
            "Daily summary",
            f"{st.closed} cycles closed ({st.wins} won, {st.losses} lost), realised PnL {st.pnl}",
            "info",
            today * DAY_MS,
            once=True,
        )
        self.notifier.submit(alert)
        return alert

    def router(self) -> APIRouter:
        r = APIRouter()

        @r.get("/events")
        async def events(limit: int = Query(50, ge=1, le=100)) -> list[dict[str, Any]]:
            """The most recent alerts, newest first (what the dashboard's bell shows)."""
            return [asdict(a) for a in reversed(list(self.notifier.recent))][:limit]

        return r

    async def health(self) -> HealthStatus:
        n = self.notifier
        return HealthStatus(details={"channels": len(n.channels), **n.stats, "queued": n.queue.qsize()})
