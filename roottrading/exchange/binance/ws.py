"""Binance combined-stream WebSocket client: klines, trades/aggTrades and bookTicker for many symbols.

Why each piece exists:
- stale watchdog: a connection can stay open while the feed is dead (no frame for `stale_after_s`).
- exponential backoff with full jitter: many clients restarting together must not stampede Binance.
- proactive reconnect before Binance's scheduled 24 h disconnect, at a moment we choose.
- `on_connected` after every (re)connect: the caller backfills the candles missed while disconnected
  over REST. It runs after the socket is open, so nothing closing meanwhile falls between the two.
- malformed frames are dropped with a logged reason; duplicate closed candles are dropped.
Protocol pings from Binance are answered by the `websockets` library; we also ping to detect dead peers.
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import msgspec
import structlog
import websockets
from websockets.exceptions import ConnectionClosed, WebSocketException

from roottrading.domain import Candle, Tick, interval_ms
from roottrading.exchange.binance.parse import Ignored, ParseError
from roottrading.exchange.binance.parse_fast import parse_ws_frame

log = structlog.get_logger(__name__)

EventCallback = Callable[[Candle | Tick], Awaitable[None]]
ConnectedCallback = Callable[[], Awaitable[None]]


class ConnectionState(str, enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    BACKOFF = "backoff"
    STOPPED = "stopped"


@dataclass
class StreamStats:
    """Per-stream counters. `rate` is messages/s over the last completed ~5 s window."""

    stream: str
    messages: int = 0
    last_message_at: float | None = None  # time.monotonic()
    rate: float = 0.0
    _window_start: float = field(default_factory=time.monotonic, repr=False)
    _window_count: int = field(default=0, repr=False)

    def hit(self, now: float) -> None:
        self.messages += 1
        self.last_message_at = now
        self._window_count += 1
        elapsed = now - self._window_start
        if elapsed >= 5.0:
            self.rate = self._window_count / elapsed
            self._window_start, self._window_count = now, 0

    def as_dict(self, now: float) -> dict[str, object]:
        age = None if self.last_message_at is None else round(now - self.last_message_at, 3)
        return {"messages": self.messages, "last_message_age_s": age, "messages_per_s": round(self.rate, 2)}


def market_streams(symbols: Iterable[str], interval: str | None = "1m", trades: str | None = "aggTrade",
                   book_ticker: bool = False) -> list[str]:
    """Binance stream names for the symbols: `<sym>@kline_<i>`, `<sym>@aggTrade|trade`, `<sym>@bookTicker`."""
    if trades not in (None, "trade", "aggTrade"):
        raise ValueError(f"trades must be 'trade', 'aggTrade' or None, not {trades!r}")
    if interval is not None:
        interval_ms(interval)  # validates
    out = []
    for s in symbols:
        low = s.lower()
        if interval:
            out.append(f"{low}@kline_{interval}")
        if trades:
            out.append(f"{low}@{trades}")
        if book_ticker:
            out.append(f"{low}@bookTicker")
    return out


class BinanceStreamClient:
    """Runs until `stop()`. Call `run()` in a task; events arrive through the async callbacks."""

    def __init__(self, symbols: Iterable[str], interval: str | None = "1m", *, on_event: EventCallback,
                 on_connected: ConnectedCallback | None = None,
                 base_url: str = "wss://stream.binance.com:9443", trades: str | None = "aggTrade",
                 book_ticker: bool = False, stale_after_s: float = 10.0, backoff_initial_s: float = 0.5,
                 backoff_max_s: float = 30.0, max_connection_age_s: float = 23.5 * 3600,
                 ping_interval_s: float | None = 20.0, open_timeout_s: float = 10.0,
                 dedupe_closed: bool = True, seed: int | None = None) -> None:
        self.streams = market_streams(symbols, interval, trades, book_ticker)
        if not self.streams:
            raise ValueError("no streams to subscribe to")
        self.base_url = base_url.rstrip("/")
        self.on_event = on_event
        self.on_connected = on_connected
        self.stale_after_s = stale_after_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.max_connection_age_s = max_connection_age_s
        self.ping_interval_s = ping_interval_s
        self.open_timeout_s = open_timeout_s
        self.dedupe_closed = dedupe_closed
        self.state = ConnectionState.IDLE
        self.reconnects = 0
        self.counters = {"malformed": 0, "ignored": 0, "duplicates": 0, "stale": 0, "scheduled": 0, "errors": 0}
        self.last_error: str | None = None
        self.connected_at: float | None = None
        self._stats = {s: StreamStats(s) for s in self.streams}
        self._seen: dict[tuple[str, str], tuple[set[int], deque[int]]] = {}
        self._rng = random.Random(seed)
        self._stop = asyncio.Event()
        self._ws: websockets.ClientConnection | None = None
        self._last_rx = time.monotonic()
        self._close_reason: str | None = None  # set by the watchdog when it closes the socket

    @property
    def url(self) -> str:
        return f"{self.base_url}/stream?streams={'/'.join(self.streams)}"

    def stats(self) -> dict[str, object]:
        """Connection state, counters and per-stream stats (for the gateway's /diagnostic)."""
        now = time.monotonic()
        return {
            "state": self.state.value, "reconnects": self.reconnects, "last_error": self.last_error,
            "connected_for_s": None if self.connected_at is None else round(now - self.connected_at, 3),
            **self.counters, "streams": {s: st.as_dict(now) for s, st in self._stats.items()},
        }

    async def stop(self) -> None:
        self._stop.set()
        if self._ws is not None:
            await self._ws.close()

    async def subscribe(self, streams: list[str]) -> None:
        """Add streams now (SUBSCRIBE) and on every later reconnect (they join the URL)."""
        new = [s for s in streams if s not in self._stats]
        self.streams.extend(new)
        self._stats.update({s: StreamStats(s) for s in new})
        if self._ws is not None and new:
            await self._ws.send(msgspec.json.encode({"method": "SUBSCRIBE", "params": new, "id": 1}).decode())

    # --- main loop ------------------------------------------------------------------------------------
    async def run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            self.state = ConnectionState.CONNECTING
            got_message = False
            try:
                async with websockets.connect(self.url, ping_interval=self.ping_interval_s,
                                              ping_timeout=self.ping_interval_s, open_timeout=self.open_timeout_s,
                                              max_size=2**22, max_queue=4096) as ws:
                    self._ws = ws
                    self.state = ConnectionState.CONNECTED
                    self.connected_at = time.monotonic()
                    log.info("binance_ws.connected", streams=len(self.streams), reconnects=self.reconnects)
                    if self.on_connected is not None:
                        await self.on_connected()
                    got_message = await self._read(ws)
            except (OSError, WebSocketException, TimeoutError) as exc:
                self.counters["errors"] += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("binance_ws.connection_error", error=self.last_error)
            finally:
                self._ws = None
                self.connected_at = None
            if self._stop.is_set():
                break
            self.reconnects += 1
            attempt = 0 if got_message else attempt + 1
            if attempt:
                delay = self._rng.uniform(0, min(self.backoff_max_s, self.backoff_initial_s * 2 ** (attempt - 1)))
                self.state = ConnectionState.BACKOFF
                log.info("binance_ws.backoff", seconds=round(delay, 3), attempt=attempt)
                try:
                    await asyncio.wait_for(self._stop.wait(), delay)
                except TimeoutError:
                    pass
        self.state = ConnectionState.STOPPED

    async def _read(self, ws: websockets.ClientConnection) -> bool:
        """Read until stale, too old, closed or stopped. True if at least one frame arrived.

        Why a watchdog task instead of a timeout per recv: `asyncio.wait_for` creates a task per call (on
        Python 3.11) and forces a loop round trip per frame; with a plain `recv()` the frames already
        buffered are handled back to back. The watchdog closes the socket when the feed is silent for
        `stale_after_s` or the connection reaches its scheduled age; a callback in progress is never
        interrupted (the next recv sees the closed connection)."""
        got = False
        assert self.connected_at is not None
        self._last_rx = time.monotonic()
        self._close_reason = None
        watchdog = asyncio.create_task(self._watch(ws, self.connected_at + self.max_connection_age_s),
                                       name="binance_ws:watchdog")
        handle = self._handle
        try:
            while not self._stop.is_set():
                try:
                    raw = await ws.recv(decode=False)  # bytes: msgspec parses them without a str copy
                except ConnectionClosed:
                    if self._close_reason is not None or self._stop.is_set():
                        return got
                    raise
                got = True
                await handle(raw)
        finally:
            watchdog.cancel()
        return got

    async def _watch(self, ws: websockets.ClientConnection, deadline: float) -> None:
        while True:
            now = time.monotonic()
            silent = now - self._last_rx
            if silent >= self.stale_after_s:
                self.counters["stale"] += 1
                self.last_error = f"stale: no message for {self.stale_after_s}s"
                log.warning("binance_ws.stale", seconds=self.stale_after_s)
                self._close_reason = "stale"
                ws.transport.abort()  # a dead peer would not answer a closing handshake
                return
            if now >= deadline:
                self.counters["scheduled"] += 1
                log.info("binance_ws.scheduled_reconnect", age_s=self.max_connection_age_s)
                self._close_reason = "scheduled"
                await ws.close()
                return
            await asyncio.sleep(max(0.001, min(self.stale_after_s - silent, deadline - now)))

    async def _handle(self, raw: str | bytes) -> None:
        now = self._last_rx = time.monotonic()
        try:
            stream, event = parse_ws_frame(raw, recv_ms=time.time_ns() // 1_000_000)
        except ParseError as exc:
            self.counters["malformed"] += 1
            log.warning("binance_ws.dropped_malformed", reason=str(exc), frame=str(raw[:120]))
            return
        st = self._stats.get(stream) if stream is not None else None
        if st is not None:
            st.hit(now)
        if type(event) is Ignored:
            self.counters["ignored"] += 1
            if event.kind == "server_error":
                log.warning("binance_ws.server_error", reason=event.reason)
            return
        if self.dedupe_closed and type(event) is Candle and event.closed and self._is_duplicate(event):
            self.counters["duplicates"] += 1
            return
        await self.on_event(event)

    def _is_duplicate(self, c: Candle) -> bool:
        seen, order = self._seen.setdefault((c.symbol, c.interval), (set(), deque()))
        if c.open_time in seen:
            return True
        seen.add(c.open_time)
        order.append(c.open_time)
        if len(order) > 1024:
            seen.discard(order.popleft())
        return False
