"""Binance combined-stream WebSocket client: klines, trades/aggTrades and bookTicker for many symbols.

Why each piece exists:
- stale watchdog: a connection can stay open while the feed is dead (no frame for `stale_after_s`).
- exponential backoff with full jitter: many clients restarting together must not stampede Binance.
- proactive reconnect before Binance's scheduled 24 h disconnect, at a moment we choose.
- `on_connected` after every (re)connect: the caller backfills the candles missed while disconnected
  over REST. It runs after the socket is open, so nothing closing meanwhile falls between the two.
- malformed frames are dropped with a logged reason; duplicate closed candles are dropped.
Why aiohttp's client (not `websockets`): its frame reader is C code; on the same frames its recv loop costs
about half as much per message (benchmarks/gateway.py prints both baselines), and every microsecond here is
on the path of every market event. Protocol pings from Binance are answered by aiohttp (autoping); we
also ping after `ping_interval_s` without traffic and drop the connection when no pong comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import random
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

import aiohttp
import msgspec
import structlog
from aiohttp import WSMsgType

from roottrading.domain import Candle, Tick, interval_ms
from roottrading.exchange.binance.parse import Ignored, ParseError
from roottrading.exchange.binance.parse_fast import parse_ws_frame

log = structlog.get_logger(__name__)

EventCallback = Callable[[Candle | Tick], Awaitable[None]]
ConnectedCallback = Callable[[], Awaitable[None]]


_DATA = (WSMsgType.TEXT, WSMsgType.BINARY)
_CONNECTION_ERRORS = (OSError, aiohttp.ClientError, TimeoutError)


class StreamClosed(Exception):
    """The server closed the stream, or it failed (no pong, protocol error): reconnect."""


def describe_error(exc: BaseException) -> str:
    """`Type: message`, naming the OS error under aiohttp's connector error (e.g. ConnectionRefusedError)."""
    text = f"{type(exc).__name__}: {exc}"
    os_error = getattr(exc, "os_error", None)
    return f"{text} ({type(os_error).__name__})" if os_error is not None else text


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


def market_streams(
    symbols: Iterable[str], interval: str | None = "1m", trades: str | None = "aggTrade", book_ticker: bool = False
) -> list[str]:
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

    def __init__(
        self,
        symbols: Iterable[str],
        interval: str | None = "1m",
        *,
        on_event: EventCallback,
        on_connected: ConnectedCallback | None = None,
        base_url: str = "wss://stream.binance.com:9443",
        trades: str | None = "aggTrade",
        book_ticker: bool = False,
        stale_after_s: float = 10.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        max_connection_age_s: float = 23.5 * 3600,
        ping_interval_s: float | None = 20.0,
        open_timeout_s: float = 10.0,
        close_timeout_s: float = 2.0,
        dedupe_closed: bool = True,
        seed: int | None = None,
    ) -> None:
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
        self.close_timeout_s = close_timeout_s
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
        self._ws: aiohttp.ClientWebSocketResponse[Literal[False]] | None = None
        self._last_rx = time.monotonic()
        self._close_reason: str | None = None  # set by the watchdog when it closes the socket
        self._disconnected = asyncio.Event()  # no connection open (set when one ends)
        self._disconnected.set()

    @property
    def url(self) -> str:
        return f"{self.base_url}/stream?streams={'/'.join(self.streams)}"

    def stats(self) -> dict[str, object]:
        """Connection state, counters and per-stream stats (for the gateway's /diagnostic)."""
        now = time.monotonic()
        return {
            "state": self.state.value,
            "reconnects": self.reconnects,
            "last_error": self.last_error,
            "connected_for_s": None if self.connected_at is None else round(now - self.connected_at, 3),
            **self.counters,
            "streams": {s: st.as_dict(now) for s, st in self._stats.items()},
        }

    async def stop(self, grace_s: float = 1.0) -> None:
        """Stop reading and close the connection: with a closing handshake if the peer answers within
        `grace_s`, else by dropping it (a dead peer must not hold up a shutdown)."""
        self._stop.set()
        ws = self._ws
        if ws is None:
            return
        try:  # the handshake may finish in the reading task (it closes on its way out): wait for that
            await asyncio.wait_for(ws.close(), grace_s)
            await asyncio.wait_for(self._disconnected.wait(), grace_s)
        except TimeoutError:
            self._drop(ws)

    async def subscribe(self, streams: list[str]) -> None:
        """Add streams now (SUBSCRIBE) and on every later reconnect (they join the URL)."""
        new = [s for s in streams if s not in self._stats]
        self.streams.extend(new)
        self._stats.update({s: StreamStats(s) for s in new})
        if self._ws is not None and new:
            await self._ws.send_str(msgspec.json.encode({"method": "SUBSCRIBE", "params": new, "id": 1}).decode())

    async def unsubscribe(self, streams: list[str]) -> None:
        """Drop streams now (one UNSUBSCRIBE frame) and from every later reconnect's URL. The connection stays
        up: a universe change must not cost every other symbol a reconnect."""
        gone = [s for s in streams if s in self._stats]
        if not gone:
            return
        self.streams = [s for s in self.streams if s not in set(gone)]
        for s in gone:
            del self._stats[s]
        if self._ws is not None:
            await self._ws.send_str(msgspec.json.encode({"method": "UNSUBSCRIBE", "params": gone, "id": 2}).decode())

    # --- main loop ------------------------------------------------------------------------------------
    async def run(self) -> None:
        # No total timeout: it would end a healthy stream. The read timeout covers the opening handshake
        # only (aiohttp lifts it once the connection is a WebSocket); staleness is the watchdog's job.
        timeout = aiohttp.ClientTimeout(total=None, connect=self.open_timeout_s, sock_read=self.open_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            attempt = 0
            while not self._stop.is_set():
                got_message = await self._connect_once(session)
                if self._stop.is_set():
                    break
                self.reconnects += 1
                attempt = 0 if got_message else attempt + 1
                if attempt:
                    delay = self._rng.uniform(0, min(self.backoff_max_s, self.backoff_initial_s * 2 ** (attempt - 1)))
                    self.state = ConnectionState.BACKOFF
                    log.info("binance_ws.backoff", seconds=round(delay, 3), attempt=attempt)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), delay)
        self.state = ConnectionState.STOPPED

    async def _connect_once(self, session: aiohttp.ClientSession) -> bool:
        """One connection, from opening to closing. True if at least one frame arrived."""
        self.state = ConnectionState.CONNECTING
        got_message = False
        try:
            async with session.ws_connect(
                self.url,
                heartbeat=self.ping_interval_s,
                compress=0,
                max_msg_size=2**22,
                decode_text=False,  # bytes: msgspec parses them without a str copy
                timeout=aiohttp.ClientWSTimeout(ws_close=self.close_timeout_s),
            ) as ws:
                self._ws = ws
                self._disconnected.clear()
                if self._stop.is_set():  # stop() came while connecting: it found no connection to close
                    self._drop(ws)  # leaving the context must not wait close_timeout_s for a handshake
                    return got_message
                self.state = ConnectionState.CONNECTED
                self.connected_at = time.monotonic()
                log.info("binance_ws.connected", streams=len(self.streams), reconnects=self.reconnects)
                if self.on_connected is not None:
                    await self.on_connected()
                got_message = await self._read(ws)
        except (*_CONNECTION_ERRORS, StreamClosed) as exc:
            self.counters["errors"] += 1
            self.last_error = describe_error(exc)
            log.warning("binance_ws.connection_error", error=self.last_error)
        finally:
            self._ws = None
            self.connected_at = None
            self._disconnected.set()
        return got_message  # False when the connection failed: the next attempt backs off

    async def _read(self, ws: aiohttp.ClientWebSocketResponse[Literal[False]]) -> bool:
        """Read until stale, too old, closed or stopped. True if at least one frame arrived.

        Why a watchdog task instead of a timeout per receive: a timeout context per call costs as much as the
        receive itself, and with a plain `receive()` the frames already buffered are handled back to back.
        The watchdog ends the connection when the feed is silent for `stale_after_s` or the connection
        reaches its scheduled age; a callback in progress is never interrupted (the next receive sees the
        closed connection)."""
        assert self.connected_at is not None
        got = False
        self._last_rx = time.monotonic()
        self._close_reason = None
        watchdog = asyncio.create_task(
            self._watch(ws, self.connected_at + self.max_connection_age_s), name="binance_ws:watchdog"
        )
        handle = self._handle
        try:
            while not self._stop.is_set():
                msg = await ws.receive()
                if msg.type in _DATA:
                    got = True
                    await handle(msg.data)
                    continue
                if self._close_reason is not None or self._stop.is_set():
                    break  # we closed it: the watchdog or stop()
                if msg.type is WSMsgType.ERROR:
                    raise StreamClosed(f"stream failed: {describe_error(msg.data)}")
                raise StreamClosed(f"closed by the server (code {ws.close_code})")
        finally:
            if self._close_reason == "scheduled" and not watchdog.done():
                await watchdog  # let the closing handshake finish (bounded by close_timeout_s)
            watchdog.cancel()
        return got

    async def _watch(self, ws: aiohttp.ClientWebSocketResponse[Literal[False]], deadline: float) -> None:
        while True:
            now = time.monotonic()
            silent = now - self._last_rx
            if silent >= self.stale_after_s:
                self.counters["stale"] += 1
                self.last_error = f"stale: no message for {self.stale_after_s}s"
                log.warning("binance_ws.stale", seconds=self.stale_after_s)
                self._close_reason = "stale"
                self._drop(ws)
                return
            if now >= deadline:
                self.counters["scheduled"] += 1
                log.info("binance_ws.scheduled_reconnect", age_s=self.max_connection_age_s)
                self._close_reason = "scheduled"
                await ws.close()
                return
            await asyncio.sleep(max(0.001, min(self.stale_after_s - silent, deadline - now)))

    @staticmethod
    def _drop(ws: aiohttp.ClientWebSocketResponse[Literal[False]]) -> None:
        """End the connection without a closing handshake: a dead peer would never answer one. Shutting the
        socket down makes the pending receive see the end of the stream at once."""
        sock = ws.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

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
        if isinstance(event, Ignored):
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
