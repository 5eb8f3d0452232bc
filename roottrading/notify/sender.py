"""Sends alerts to Apprise URLs without ever making trading wait.

`Notifier.submit()` is synchronous and O(1): it de-duplicates, applies the rate limit and puts the alert on a
bounded queue (full: the alert is dropped and counted, never awaited). One background task takes alerts off
the queue and sends each to every URL in a worker thread (Apprise's plugins do blocking I/O), one `Apprise`
object per URL so a failing channel is retried on its own (`retries`, with backoff) and then logged, while
the others have their message already.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence

import apprise
import structlog

from roottrading.notify.events import Alert

log = structlog.get_logger("roottrading.notify")
_LEVEL_TYPE = {
    "info": apprise.NotifyType.INFO,
    "warning": apprise.NotifyType.WARNING,
    "critical": apprise.NotifyType.FAILURE,
}


class Notifier:
    def __init__(
        self,
        urls: Sequence[str],
        *,
        events: Sequence[str] | None = None,
        dedupe_s: float = 300.0,
        per_minute: int = 20,
        retries: int = 3,
        retry_backoff_s: float = 1.0,
        queue_size: int = 1000,
        recent_size: int = 100,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.events = set(events) if events is not None else None
        self.dedupe_s, self.per_minute = dedupe_s, per_minute
        self.retries, self.retry_backoff_s = retries, retry_backoff_s
        self.monotonic = monotonic
        self.channels: list[tuple[str, apprise.Apprise]] = []
        for url in urls:
            ap = apprise.Apprise()
            if not ap.add(url):
                log.error("notify URL not understood by Apprise; ignored", scheme=url.split(":", 1)[0])
                continue
            self.channels.append((url.split(":", 1)[0], ap))  # only the scheme is ever logged: URLs hold tokens
        self.queue: asyncio.Queue[Alert] = asyncio.Queue(queue_size)
        self.seen: OrderedDict[str, float] = OrderedDict()  # dedupe key -> when sent (inf: once)
        self.sent_times: deque[float] = deque()
        self.recent: deque[Alert] = deque(maxlen=recent_size)  # for the dashboard's bell, sent or not
        self.stats = {
            "submitted": 0,
            "sent": 0,
            "deduped": 0,
            "rate_limited": 0,
            "dropped": 0,
            "failed": 0,
            "filtered": 0,
        }
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.channels)

    def submit(self, alert: Alert) -> bool:
        """Record the alert (the bell) and queue it for sending. Never blocks; False when not queued."""
        if self.events is not None and alert.event not in self.events:
            self.stats["filtered"] += 1
            return False
        now = self.monotonic()
        last = self.seen.get(alert.key)
        if last is not None and (last == float("inf") or now - last < self.dedupe_s):
            self.stats["deduped"] += 1
            return False
        self.seen[alert.key] = float("inf") if alert.once else now
        self.seen.move_to_end(alert.key)
        while len(self.seen) > 10_000:
            self.seen.popitem(last=False)
        self.recent.append(alert)
        self.stats["submitted"] += 1
        if not self.channels:
            return False
        while self.sent_times and now - self.sent_times[0] >= 60:
            self.sent_times.popleft()
        if len(self.sent_times) >= self.per_minute:
            self.stats["rate_limited"] += 1
            return False
        try:
            self.queue.put_nowait(alert)
        except asyncio.QueueFull:
            self.stats["dropped"] += 1
            return False
        self.sent_times.append(now)
        return True

    def start(self) -> None:
        if self.channels and self._task is None:
            self._task = asyncio.create_task(self._run(), name="notify:sender")

    async def stop(self, grace_s: float = 5.0) -> None:
        """Give the queue `grace_s` to empty (a stop message may be the one that matters), then cancel."""
        task, self._task = self._task, None
        if task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), grace_s)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        while True:
            alert = await self.queue.get()
            try:
                await asyncio.gather(*(self._send(scheme, ap, alert) for scheme, ap in self.channels))
            finally:
                self.queue.task_done()

    async def _send(self, scheme: str, ap: apprise.Apprise, alert: Alert) -> None:
        for attempt in range(1, self.retries + 1):
            ok = await asyncio.to_thread(
                ap.notify, body=alert.body, title=alert.title, notify_type=_LEVEL_TYPE[alert.level]
            )
            if ok:
                self.stats["sent"] += 1
                return
            if attempt < self.retries:
                await asyncio.sleep(self.retry_backoff_s * 2 ** (attempt - 1))
        self.stats["failed"] += 1
        log.warning("notification not delivered", channel=scheme, alert=alert.event, attempts=self.retries)
