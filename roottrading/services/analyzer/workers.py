"""Strategy evaluation across cores: one worker process per partition of symbols.

A symbol always goes to the same worker (crc32 partition), so its candles are evaluated in order and its
window lives in one place. Each worker runs an AnalyzerEngine; control operations (enable, disable, params)
are broadcast to every worker so they stay identical. `workers=0` runs the engine in-process (backtests,
small setups, tests). Several analyzer *processes* share symbols through the bus's consumer groups.

A worker that dies (a crash in native code, a kill) or stops answering for `worker_timeout_s` (a strategy that
never returns: evaluations cannot be interrupted inside a process) is killed and restarted by a watchdog: its
calls in flight fail with `WorkerLost` (the bus redelivers those candles), the new worker gets the runtime
control operations again and is warmed with the candles the old one had processed, so it continues exactly.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing as mp
import threading
import time
from collections import deque
from dataclasses import asdict
from typing import Any

import msgspec
import structlog

from roottrading.bus.base import partition_of
from roottrading.domain import Candle, Signal
from roottrading.runtime.heap import settle_heap
from roottrading.services.analyzer.engine import AnalyzerEngine, EngineConfig, EngineResult

log = structlog.get_logger(__name__)
_enc = msgspec.msgpack.Encoder()
_candle_dec = msgspec.msgpack.Decoder(Candle)
_result_dec = msgspec.msgpack.Decoder(tuple[int, list[Signal], list[Signal], list[tuple[str, str]], Any])


class WorkerLost(RuntimeError):
    """The worker evaluating a call died or hung and was restarted; the call should be retried."""


def _worker_main(config: dict[str, Any], inbox: Any, outbox: Any) -> None:
    """Worker process loop. Messages: ('candles', [(seq, bytes), ...]) | ('warm', seq, [bytes]) |
    ('control', seq, args) | ('stop',). Replies are lists of encoded (seq, signals, evaluated, errors, extra):
    a burst of candles for this worker costs one queue round trip, not one per candle."""
    engine = AnalyzerEngine(EngineConfig(**config))
    warmed = frozen = False
    seen = 0
    while True:
        item = inbox.get()
        kind = item[0]
        if kind == "stop":
            return
        if kind == "inform":  # informative candles: kept, not evaluated, no reply (ordered before later calls)
            engine.inform([_candle_dec.decode(b) for b in item[1]])
            continue
        if kind == "candles":
            outbox.put([_one_candle(engine, seq, raw) for seq, raw in item[1]])
            seen += len(item[1])
            if not frozen and seen >= 500:  # also when nothing was warmed: windows are full by now
                settle_heap()
                frozen = True
            continue
        seq = item[1]
        try:
            if kind == "warm":
                n = engine.warm([_candle_dec.decode(b) for b in item[2]])
                outbox.put([_enc.encode((seq, [], [], [], n))])
                warmed = True
            elif kind == "control":
                res = engine.control(*item[2])
                outbox.put([_enc.encode((seq, [], [], [], res))])
            elif kind == "restore":
                engine.restore_states([(n, s, d) for n, s, d in item[2]])
                outbox.put([_enc.encode((seq, [], [], [], len(item[2])))])
        except (ValueError, KeyError, TypeError) as exc:
            outbox.put([_enc.encode((seq, [], [], [("", f"{type(exc).__name__}: {exc}")], "error"))])
        if warmed:
            # the windows and strategies are long-lived: move them out of the collector's reach so a
            # full collection (a latency spike of several ms) does not walk them on a later candle
            settle_heap()


def _one_candle(engine: AnalyzerEngine, seq: int, raw: bytes) -> bytes:
    try:
        r = engine.on_candle(_candle_dec.decode(raw))
        return _enc.encode((seq, r.signals, r.evaluated, r.errors, r.states or None))
    except (ValueError, KeyError, TypeError, msgspec.DecodeError) as exc:
        return _enc.encode((seq, [], [], [("", f"{type(exc).__name__}: {exc}")], "error"))


class WorkerPool:
    def __init__(self, config: EngineConfig, workers: int, worker_timeout_s: float = 60.0) -> None:
        self.config = config
        self.n = workers
        self.worker_timeout_s = worker_timeout_s
        self.local = AnalyzerEngine(config) if workers == 0 else None
        self.restarts = 0
        self._seq = itertools.count(1)
        # per worker: seq -> (future, monotonic time sent, symbol, encoded candle or None); loop thread only
        self._inflight: list[dict[int, tuple[asyncio.Future[Any], float, str | None, bytes | None]]] = [
            {} for _ in range(workers)
        ]
        self._procs: list[Any] = [None] * workers
        self._inboxes: list[Any] = [None] * workers
        self._outboxes: list[Any] = [None] * workers
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[list[tuple[int, bytes]]] = [[] for _ in range(workers)]
        self._history: dict[str, deque[bytes]] = {}  # processed candles per symbol, to warm a restarted worker
        self._controls: list[tuple[Any, ...]] = []  # runtime control ops, replayed to a restarted worker
        self._informed: dict[str, deque[bytes]] = {}  # informative candles per symbol, for a restarted worker
        self._state_docs: dict[tuple[str, str], dict[str, Any]] = {}  # latest strategy states, likewise
        self._watchdog: asyncio.Task[None] | None = None
        self._ctx = mp.get_context("spawn")

    @property
    def registry(self) -> Any:
        """The strategy registry of the in-process engine, or a reference copy mirroring the workers."""
        if self.local is not None:
            return self.local.registry
        return self._mirror.registry

    def window_size(self) -> int:
        """Closed candles kept per symbol (what the warm-up after a restart loads)."""
        return (self.local if self.local is not None else self._mirror).window_size()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.local is not None:
            return
        self._mirror = AnalyzerEngine(self.config)  # answers describe() without a round trip
        for i in range(self.n):
            self._spawn(i)
        self._watchdog = asyncio.create_task(self._watch(), name="analyzer-worker-watchdog")
        log.info("analyzer workers started", workers=self.n)

    def _spawn(self, i: int) -> None:
        inbox, outbox = self._ctx.Queue(), self._ctx.Queue()
        p = self._ctx.Process(
            target=_worker_main, args=(asdict(self.config), inbox, outbox), daemon=True, name=f"analyzer-worker-{i}"
        )
        p.start()
        self._procs[i], self._inboxes[i], self._outboxes[i] = p, inbox, outbox
        threading.Thread(target=self._read, args=(i, outbox), daemon=True, name=f"analyzer-reader-{i}").start()

    async def _watch(self, every_s: float = 0.2) -> None:
        """Restart a worker that died or has not answered its oldest call within `worker_timeout_s`."""
        while True:
            await asyncio.sleep(every_s)
            now = time.monotonic()
            for i in range(self.n):
                oldest = min((t for _, t, _, _ in self._inflight[i].values()), default=now)
                if not self._procs[i].is_alive():
                    await self._restart(i, f"worker died (exit code {self._procs[i].exitcode})")
                elif now - oldest > self.worker_timeout_s:
                    await self._restart(i, f"no answer for {now - oldest:.0f}s (timeout {self.worker_timeout_s:g}s)")

    async def _restart(self, i: int, why: str) -> None:
        old, outbox = self._procs[i], self._outboxes[i]
        if old.is_alive():
            old.kill()
        await asyncio.to_thread(old.join, 5)
        outbox.put(None)  # ends the old reader thread
        lost, self._inflight[i] = self._inflight[i], {}
        self._pending[i] = []
        for fut, _, _, _ in lost.values():
            if not fut.done():
                fut.set_exception(WorkerLost(f"analyzer worker {i} restarted: {why}"))
        self.restarts += 1
        log.error("analyzer worker restarted", worker=i, reason=why, calls_lost=len(lost), restarts=self.restarts)
        self._spawn(i)
        # the new worker starts like the old one: same controls, then the candles it had processed
        for args in self._controls:
            self._inboxes[i].put(("control", next(self._seq), args))
        for symbol, hist in self._history.items():
            if partition_of(symbol, self.n) == i and hist:
                self._inboxes[i].put(("warm", next(self._seq), list(hist)))
        for hist in self._informed.values():
            self._inboxes[i].put(("inform", list(hist)))
        if self._state_docs:
            docs = [(n, s, d) for (n, s), d in self._state_docs.items()]
            self._inboxes[i].put(("restore", next(self._seq), docs))

    def _read(self, worker: int, outbox: Any) -> None:
        while True:
            batch = outbox.get()
            if batch is None:
                return
            done = [_result_dec.decode(raw) for raw in batch]
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._deliver, worker, done)  # one loop wake-up per batch

    def _deliver(self, worker: int, done: list[Any]) -> None:
        inflight = self._inflight[worker]
        for seq, signals, evaluated, errors, extra in done:
            entry = inflight.pop(seq, None)
            if entry is None:
                continue  # a replayed warm/control after a restart, or a call already failed
            fut, _, symbol, raw = entry
            if raw is not None and symbol is not None and extra != "error":
                self._remember(symbol, raw)
            states = [(n, s, d) for n, s, d in extra] if raw is not None and isinstance(extra, list) else []
            for n, s, d in states:
                self._state_docs[(n, s)] = d
            if not fut.done():
                fut.set_result((EngineResult(signals, evaluated, [tuple(e) for e in errors], states), extra))

    def _remember(self, symbol: str, raw: bytes) -> None:
        hist = self._history.get(symbol)
        if hist is None:
            hist = self._history[symbol] = deque(maxlen=self._mirror.window_size())
        hist.append(raw)

    def _track(self, worker: int, symbol: str | None = None, raw: bytes | None = None) -> tuple[int, Any]:
        assert self._loop is not None
        seq = next(self._seq)
        fut = self._loop.create_future()
        self._inflight[worker][seq] = (fut, time.monotonic(), symbol, raw)
        return seq, fut

    async def _call(self, worker: int, kind: str, payload: Any) -> tuple[EngineResult, Any]:
        seq, fut = self._track(worker)
        self._inboxes[worker].put((kind, seq, payload))
        return await fut

    async def on_candle(self, c: Candle) -> EngineResult:
        """Raises WorkerLost when the worker died or hung meanwhile: the caller's bus redelivers the candle."""
        if self.local is not None:
            return self.local.on_candle(c)
        assert self._loop is not None
        worker = partition_of(c.symbol, self.n)
        raw = _enc.encode(c)
        seq, fut = self._track(worker, c.symbol, raw)
        pending = self._pending[worker]
        pending.append((seq, raw))
        if len(pending) == 1:  # first of this loop iteration: send them all once the callers yielded
            self._loop.call_soon(self._flush, worker)
        res, _ = await fut
        return res

    def _flush(self, worker: int) -> None:
        batch, self._pending[worker] = self._pending[worker], []
        if batch:
            self._inboxes[worker].put(("candles", batch))

    async def warm(self, symbol: str, candles: list[Candle]) -> int:
        if self.local is not None:
            return self.local.warm(candles)
        raws = [_enc.encode(c) for c in candles]
        _, n = await self._call(partition_of(symbol, self.n), "warm", raws)
        for raw in raws:
            self._remember(symbol, raw)
        return int(n)

    async def restore_states(self, docs: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Stored strategy states to every engine (each symbol's worker finds its own)."""
        for n, s, d in docs:
            self._state_docs[(n, s)] = d
        if self.local is not None:
            self.local.restore_states(docs)
            return
        for w in range(self.n):
            await self._call(w, "restore", docs)

    def inform_symbols(self) -> set[str]:
        """Symbols whose candles the strategies read as informative data (see `inform`)."""
        return (self.local if self.local is not None else self._mirror).inform_symbols()

    def inform_size(self) -> int:
        return (self.local if self.local is not None else self._mirror).inform_size()

    def inform(self, candles: list[Candle]) -> None:
        """Informative candles to every engine (any worker's strategies may read any symbol), before the
        evaluation of later candles: a worker's inbox is ordered and pending candle batches are sent after."""
        if self.local is not None:
            self.local.inform(candles)
            return
        raws = [_enc.encode(c) for c in candles if c.closed]
        if not raws:
            return
        for c, raw in zip((c for c in candles if c.closed), raws, strict=True):
            hist = self._informed.get(c.symbol)
            if hist is None:
                hist = self._informed[c.symbol] = deque(maxlen=self._mirror.inform_size())
            hist.append(raw)
        for inbox in self._inboxes:
            inbox.put(("inform", raws))

    async def control(self, op: str, name: str, symbol: str | None = None, params: dict[str, Any] | None = None) -> Any:
        """Apply to the reference engine first (validates, raises on bad input), then to every worker."""
        engine = self.local if self.local is not None else self._mirror
        result = engine.control(op, name, symbol, params)
        self._controls.append((op, name, symbol, params))
        for w in range(self.n):
            await self._call(w, "control", (op, name, symbol, params))
        return result

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
            self._watchdog = None
        for inbox in self._inboxes:
            if inbox is not None:
                inbox.put(("stop",))
        for p in self._procs:
            if p is None:
                continue
            await asyncio.to_thread(p.join, 5)
            if p.is_alive():
                p.kill()
        for outbox in self._outboxes:
            if outbox is not None:
                outbox.put(None)  # ends the reader thread
        for inflight in self._inflight:
            for fut, _, _, _ in inflight.values():
                fut.cancel()
            inflight.clear()
        self._procs = [None] * self.n


def _resolve_all(done: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for fut, value in done:
        if not fut.done():
            fut.set_result(value)
