"""Gateway service (reference port 5000): Binance market data in, ordered closed candles and ticks out.

Pipeline: BinanceStreamClient (kline, aggTrade, bookTicker; reconnect, watchdog) -> `on_event` (keeps the
latest tick; releases a closed candle right there when nothing is queued, else queues it for the flusher
task, so arrival order is kept) -> CandleSequencer per symbol (dedupe, hold back out-of-order candles) ->
publish `market.candles.<SYM>` in open-time order (msg_id = candle.key, key = symbol), then the published
candles go to the write-behind CandleWriter, which upserts them into market_data right after, in the same
order (writer.py says why this loses nothing: a restart resumes after the last *stored* candle and
re-publishes what was not stored, with the same ids). Backfill from REST runs on start, after every (re)connect (the
stream client's on_connected hook) and when a gap stays open for `gap_grace_s`; it starts at the contiguous
watermark (the last released candle, or the last stored one, or `warmup_candles` back when nothing is
stored). Ticks are throttled: the latest per symbol every `tick_interval_s`.
When the host runs on a SimClock (the offline demo), candle close times drive it, as the replay service did.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter

from roottrading import messages as m
from roottrading.clock import SimClock
from roottrading.domain import Candle, Tick
from roottrading.exchange.binance.rest_market import BinanceMarketRest, RestMarketError
from roottrading.exchange.binance.ws import BinanceStreamClient, ConnectionState, market_streams
from roottrading.runtime.service import Consumes, HealthStatus, Service
from roottrading.services.gateway.sequencer import CandleSequencer
from roottrading.services.gateway.writer import CandleWriter
from roottrading.store.repos_market import CandleRepo


@dataclass
class GatewayOptions:
    """Tuning knobs (ctx.wiring.gateway: a GatewayOptions or a dict of its fields; defaults when None)."""

    warmup_candles: int = 1000  # history fetched when the store has nothing for a symbol
    max_backfill: int = 50_000  # cap of one backfill (a longer outage leaves an explicit, logged hole)
    tick_interval_s: float = 0.25
    gap_grace_s: float = 1.0  # a swapped pair usually heals itself; ask REST only if the gap persists
    trades: str | None = "aggTrade"
    book_ticker: bool = True
    stale_after_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    ping_interval_s: float | None = 20.0
    rest_max_ban_wait_s: float = 600.0
    fetch_exchange_info: bool = True
    max_unstored: int = 100_000  # published-but-not-stored candles before publishing waits for the store
    store_coalesce_s: float = 0.005  # the writer waits this long so a burst of closes commits once, after it
    store_close_timeout_s: float = 30.0  # on stop, how long to wait for an unreachable store (then: backfill)
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_given(cls, value: GatewayOptions | Mapping[str, Any] | None) -> GatewayOptions:
        if isinstance(value, GatewayOptions):
            return value
        return cls(**value) if value is not None else cls()


@dataclass
class SymbolStats:
    backfilled: int = 0  # candles received from REST (before dedupe)
    published: int = 0
    published_ticks: int = 0
    last_published_open_time: int | None = None


class GatewayService(Service):
    name = "gateway"
    description = "Binance market data: WebSocket streams + REST backfill -> ordered candles and ticks."

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        s = ctx.settings
        self.opts = GatewayOptions.from_given(ctx.wiring.gateway)
        self.symbols = [x.upper() for x in s.symbols]
        self.interval = s.interval
        self.repo = CandleRepo(ctx.db)
        self.writer = CandleWriter(ctx.db, coalesce_s=self.opts.store_coalesce_s)
        self.seqs = {sym: CandleSequencer(sym, self.interval) for sym in self.symbols}
        self.sym_stats = {sym: SymbolStats() for sym in self.symbols}
        self.rest: BinanceMarketRest | None = None
        self.client: BinanceStreamClient | None = None
        self.exchange_info: dict[str, Any] | None = None
        self.last_trade: dict[str, Tick] = {}
        self.last_book: dict[str, Tick] = {}
        self.last_tick: dict[str, Tick] = {}  # merged trade + book, as last published
        self.backfills = 0
        self.backfill_errors = 0
        self.last_backfill_error: str | None = None
        self._inbox: list[Candle] = []
        self._wake = asyncio.Event()
        self._releasing = asyncio.Lock()  # one releaser at a time (stream fast path or flusher): per-symbol order
        self._backfill_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[Any]] = []
        self._gap_task: asyncio.Task[None] | None = None
        self._dirty_ticks: set[str] = set()
        self._closing = False
        self._started_at = time.monotonic()

    # --- lifecycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        s = self.ctx.settings
        self.rest = BinanceMarketRest(
            s.binance_rest_url, max_ban_wait_s=self.opts.rest_max_ban_wait_s, seed=self.opts.seed
        )
        for sym in self.symbols:
            self.seqs[sym].last = await self.repo.last_open_time(sym, self.interval)
        self.writer.prepare()
        self.client = BinanceStreamClient(
            self.symbols,
            self.interval,
            on_event=self.on_event,
            on_connected=self.on_connected,
            base_url=s.binance_ws_url,
            trades=self.opts.trades,
            book_ticker=self.opts.book_ticker,
            stale_after_s=self.opts.stale_after_s,
            backoff_initial_s=self.opts.backoff_initial_s,
            backoff_max_s=self.opts.backoff_max_s,
            ping_interval_s=self.opts.ping_interval_s,
            seed=self.opts.seed,
        )
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name="gateway:flush"),
            asyncio.create_task(self._tick_loop(), name="gateway:ticks"),
            asyncio.create_task(self.client.run(), name="gateway:ws"),
        ]
        if self.opts.fetch_exchange_info:
            self._tasks.append(asyncio.create_task(self._load_exchange_info(), name="gateway:exchange-info"))
        self.log.info(
            "gateway started",
            symbols=self.symbols,
            interval=self.interval,
            ws=s.binance_ws_url,
            rest=s.binance_rest_url,
        )

    async def stop(self) -> None:
        """Stop intake, then let the flusher store and publish what it already took (a candle written but
        not published would never be published: the next start resumes after the stored watermark)."""
        if self.client is not None:
            await self.client.stop()
        for t in ([self._gap_task] if self._gap_task else []) + self._tasks[2:]:
            t.cancel()  # no new backfill or exchange-info request
        self._closing = True
        self._wake.set()
        if self._tasks:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(self._tasks[0]), 10)
        tasks = [*self._tasks, *([self._gap_task] if self._gap_task else [])]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self.rest is not None:
            await self.rest.aclose()
        await self.writer.close(self.opts.store_close_timeout_s)

    # --- intake (called by the stream client; must stay cheap) ---------------------------------------
    async def on_event(self, ev: Candle | Tick) -> None:
        if isinstance(ev, Candle):
            if ev.closed and ev.interval == self.interval and ev.symbol in self.seqs:
                if self._inbox or self._releasing.locked():
                    self._inbox.append(ev)  # behind what is queued: the flusher keeps the order
                    self._wake.set()
                else:  # fast path: nothing queued, publish now (no hop through the flusher task)
                    async with self._releasing:
                        await self._release(self.seqs[ev.symbol].offer(ev))
                    if self.seqs[ev.symbol].pending:
                        self._watch_gaps()
            return
        if ev.symbol not in self.seqs:  # left the universe; its frames may still be in flight
            return
        if ev.bid is not None:
            self.last_book[ev.symbol] = ev
        else:
            self.last_trade[ev.symbol] = ev
        self._dirty_ticks.add(ev.symbol)

    async def on_connected(self) -> None:
        """After every (re)connect: fetch what closed while we were away (before reading the stream)."""
        await self.backfill()

    # --- backfill -------------------------------------------------------------------------------------
    async def backfill(self, symbols: list[str] | None = None) -> int:
        """Fetch missing closed candles from REST from each symbol's contiguous watermark. Returns candles got."""
        assert self.rest is not None
        got = 0
        async with self._backfill_lock:
            self.backfills += 1
            for sym in symbols or list(self.symbols):
                if sym not in self.seqs:  # left the universe meanwhile
                    continue
                try:
                    got += await self._backfill_symbol(sym)
                except (RestMarketError, OSError) as exc:
                    self.backfill_errors += 1
                    self.last_backfill_error = f"{sym}: {exc}"
                    self.log.warning("backfill failed", symbol=sym, error=str(exc))
        return got

    async def _backfill_symbol(self, sym: str) -> int:
        assert self.rest is not None
        seq = self.seqs[sym]
        now = await self.rest.server_time()
        wm = seq.last
        if wm is not None and wm >= now:  # the store is ahead of the exchange: another timeline (re-run demo)
            self.log.warning(
                "store ahead of exchange; restarting from warm-up", symbol=sym, watermark=wm, server_time=now
            )
            seq.last = wm = None
            seq.pending.clear()
        cap = self.opts.warmup_candles if wm is None else self.opts.max_backfill
        candles = await self.rest.backfill(sym, self.interval, wm, now, max_candles=cap)
        self.sym_stats[sym].backfilled += len(candles)
        if not candles:
            return 0
        if wm is not None and seq.last == wm and candles[0].open_time > wm + seq.step:
            # the exchange has no candles right after the watermark (outage longer than the cap, or a hole)
            self.log.warning("unfillable gap: skipping", symbol=sym, after=wm, next=candles[0].open_time)
            self._inbox.extend(seq.skip_to(candles[0].open_time))  # held-back ones, offered again
        elif wm is None and seq.last is None:
            seq.last = candles[0].open_time - seq.step
        self._inbox.extend(candles)
        self._wake.set()
        return len(candles)

    # --- universe changes (UNIVERSE_CONFIG set) ------------------------------------------------------
    def consumes(self) -> list[Consumes]:
        return [Consumes(m.UNIVERSE_CHANGED, self.on_universe)] if self.ctx.settings.universe_config else []

    async def on_universe(self, msg: m.Message) -> None:
        """Stream exactly `streamed` (the members and the pairs with an open cycle): one SUBSCRIBE and one
        UNSUBSCRIBE frame on the open connection, never a reconnect."""
        target: list[str] = [s.upper() for s in msg.payload.streamed]
        gone = [s for s in self.symbols if s not in target]
        new = [s for s in target if s not in self.seqs]
        if gone:
            await self.remove_symbols(gone)
        if new:
            await self.add_symbols(new)

    def _streams(self, symbols: list[str]) -> list[str]:
        return market_streams(symbols, self.interval, self.opts.trades, self.opts.book_ticker)

    async def add_symbols(self, new: list[str]) -> None:
        """Store each new pair's missed history first (not published: it is history, the analyzer warms from
        it), then subscribe its streams; what closes meanwhile is a gap the usual backfill heals."""
        assert self.rest is not None
        async with self._backfill_lock:
            now = await self.rest.server_time()
            for sym in new:
                seq = CandleSequencer(sym, self.interval)
                seq.last = await self.repo.last_open_time(sym, self.interval)
                cap = self.opts.warmup_candles if seq.last is None else self.opts.max_backfill
                try:
                    history = await self.rest.backfill(sym, self.interval, seq.last, now, max_candles=cap)
                except (RestMarketError, OSError) as exc:
                    self.backfill_errors += 1
                    self.last_backfill_error = f"{sym}: {exc}"
                    self.log.warning("history of a new pair not stored", symbol=sym, error=str(exc))
                    history = []
                if history:
                    await self.repo.upsert(history)
                    seq.last = history[-1].open_time
                self.seqs[sym] = seq
                self.sym_stats.setdefault(sym, SymbolStats()).backfilled += len(history)
                self.symbols.append(sym)
        if self.client is not None:
            await self.client.subscribe(self._streams(new))
        self.log.info("symbols added", symbols=new, streams=len(self.client.streams) if self.client else 0)

    async def remove_symbols(self, gone: list[str]) -> None:
        """Stop a pair's streams. Candles already queued for it are dropped (the sequencer is gone)."""
        for sym in gone:
            self.symbols.remove(sym)
            self.seqs.pop(sym, None)
            self.last_trade.pop(sym, None)
            self.last_book.pop(sym, None)
            self._dirty_ticks.discard(sym)
        if self.client is not None:
            await self.client.unsubscribe(self._streams(gone))
        self.log.info("symbols removed", symbols=gone)

    async def _load_exchange_info(self) -> None:
        assert self.rest is not None
        for attempt in range(5):
            try:
                self.exchange_info = await self.rest.exchange_info(self.symbols)
                return
            except (RestMarketError, OSError, ValueError) as exc:
                self.log.info("exchange info not available yet", error=str(exc), attempt=attempt)
                await asyncio.sleep(2.0 * (attempt + 1))

    # --- ordered output -------------------------------------------------------------------------------
    async def _flush_loop(self) -> None:
        while not (self._closing and not self._inbox):
            await self._wake.wait()
            self._wake.clear()
            async with self._releasing:
                while self._inbox:
                    batch, self._inbox = self._inbox, []
                    ready: list[Candle] = []
                    for c in batch:
                        seq = self.seqs.get(c.symbol)
                        if seq is not None:
                            ready.extend(seq.offer(c))
                    await self._release(ready)
            self._watch_gaps()

    async def _release(self, ready: list[Candle]) -> None:
        """Publish in-order candles, then hand them to the write-behind store. Callers hold `_releasing`."""
        if not ready:
            return
        await self._publish(ready)
        if self.writer.pending_rows > self.opts.max_unstored:
            self.log.warning("store far behind; publishing waits", unstored=self.writer.pending_rows)
            await self.writer.flush()  # bounded memory while the database is down

    async def _publish(self, candles: list[Candle]) -> None:
        """Publish in order; what was published goes to the store (publish, then store: the store never holds
        a candle that was not published, so if publishing fails, or the process dies, the next start's backfill
        from the last stored candle publishes everything in doubt again, with the same ids)."""
        sim = self.ctx.clock if isinstance(self.ctx.clock, SimClock) else None
        bus, stats = self.ctx.bus, self.sym_stats
        done = 0
        try:
            for c in candles:
                if done and not done % 16:
                    await asyncio.sleep(0)  # a long batch must not hold back the frames arriving meanwhile
                if sim is not None and c.close_time > sim.now_ms():
                    sim.set(c.close_time)
                await bus.publish(m.candles_topic(c.symbol), c, key=c.symbol, msg_id=c.key, ts=self.ctx.clock.now_ms())
                done += 1
                st = stats[c.symbol]
                st.published += 1
                st.last_published_open_time = c.open_time
        finally:
            if done:
                self.writer.submit(candles if done == len(candles) else candles[:done])

    def _watch_gaps(self) -> None:
        if self._closing:
            return
        if any(seq.pending for seq in self.seqs.values()) and (self._gap_task is None or self._gap_task.done()):
            self._gap_task = asyncio.create_task(self._heal_gaps(), name="gateway:gap")

    async def _heal_gaps(self) -> None:
        """Held-back candles: give the stream `gap_grace_s` to deliver the missing ones, then ask REST."""
        while True:
            gaps = {s: q.gap for s, q in self.seqs.items() if q.gap is not None}
            if not gaps:
                return
            await asyncio.sleep(self.opts.gap_grace_s)
            still = [
                s for s, g in gaps.items() if (q := self.seqs.get(s)) is not None and (cur := q.gap) and cur[0] == g[0]
            ]
            if still:
                self.log.info("gap persists; backfilling", symbols=still)
                await self.backfill(still)
                await asyncio.sleep(0)

    # --- ticks ----------------------------------------------------------------------------------------
    def merged_tick(self, sym: str) -> Tick | None:
        """Latest trade price with the latest best bid/ask (either may be missing)."""
        trade, book = self.last_trade.get(sym), self.last_book.get(sym)
        if trade is None:
            return book
        if book is None:
            return trade
        # the trade's exchange time: spot bookTicker carries none (its time is our receive time)
        return Tick(
            symbol=sym,
            time=trade.time,
            price=trade.price,
            quantity=trade.quantity,
            bid=book.bid,
            ask=book.ask,
            trade_id=trade.trade_id,
            is_buyer_maker=trade.is_buyer_maker,
        )

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.opts.tick_interval_s)
            dirty, self._dirty_ticks = self._dirty_ticks, set()
            for i, sym in enumerate(dirty):
                if i and not i % 8:
                    await asyncio.sleep(0)  # many symbols: let the stream reader run between slices
                tick = self.merged_tick(sym)
                if tick is None:
                    continue
                self.last_tick[sym] = tick
                await self.ctx.publish(m.ticks_topic(sym), tick, key=sym)
                self.sym_stats[sym].published_ticks += 1

    # --- observability --------------------------------------------------------------------------------
    def diagnostic(self) -> dict[str, Any]:
        ws = self.client.stats() if self.client is not None else {}
        streams: Any = ws.pop("streams", {}) if ws else {}  # the client's per-stream stats
        symbols = {}
        for sym in self.symbols:
            seq, st = self.seqs[sym], self.sym_stats[sym]
            low = sym.lower()
            symbols[sym] = {
                "streams": {k: v for k, v in streams.items() if k.startswith(low + "@")},
                "watermark": seq.last,
                "held_back_now": len(seq.pending),
                "gap": seq.gap,
                "backfilled": st.backfilled,
                "published": st.published,
                "published_ticks": st.published_ticks,
                "duplicates_dropped": seq.stats.duplicates,
                "gaps_filled": seq.stats.gaps_filled,
                "held_back": seq.stats.held_back,
                "skipped": seq.stats.skipped,
                "last_published_open_time": st.last_published_open_time,
            }
        return {
            "connection": ws,
            "symbols": symbols,
            "backfills": self.backfills,
            "backfill_errors": self.backfill_errors,
            "last_backfill_error": self.last_backfill_error,
            "store": self.writer.stats(),
            "rest": dict(self.rest.stats) if self.rest else {},
            "uptime_s": round(time.monotonic() - self._started_at, 1),
        }

    async def health(self) -> HealthStatus:
        state = self.client.state if self.client is not None else ConnectionState.IDLE
        status = "ok" if state is ConnectionState.CONNECTED else "degraded"
        return HealthStatus(
            status,
            {
                "connection": state.value,
                "reconnects": self.client.reconnects if self.client else 0,
                "published": sum(s.published for s in self.sym_stats.values()),
                "unstored": self.writer.pending_rows,
                "store_write_errors": self.writer.write_errors,
            },
        )

    def router(self) -> APIRouter:
        r = APIRouter()

        @r.get("/diagnostic")
        async def diagnostic() -> dict[str, Any]:
            """Per symbol and stream: state, last message age, reconnects, messages/s, backfilled, published,
            duplicates dropped, gaps filled."""
            return self.diagnostic()

        return r
