"""Strategy evaluation across cores: one worker process per partition of symbols.

A symbol always goes to the same worker (crc32 partition), so its candles are evaluated in order and its
window lives in one place. Each worker runs an AnalyzerEngine; control operations (enable, disable, params)
are broadcast to every worker so they stay identical. `workers=0` runs the engine in-process (backtests,
small setups, tests). Several analyzer *processes* share symbols through the bus's consumer groups.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing as mp
import threading
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
_result_dec = msgspec.msgpack.Decoder(tuple[int, list[Signal], list[Signal], list[str], Any])


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
        except (ValueError, KeyError, TypeError) as exc:
            outbox.put([_enc.encode((seq, [], [], [f"{type(exc).__name__}: {exc}"], "error"))])
        if warmed:
            # the windows and strategies are long-lived: move them out of the collector's reach so a
            # full collection (a latency spike of several ms) does not walk them on a later candle
            settle_heap()


def _one_candle(engine: AnalyzerEngine, seq: int, raw: bytes) -> bytes:
    try:
        r = engine.on_candle(_candle_dec.decode(raw))
        return _enc.encode((seq, r.signals, r.evaluated, r.errors, None))
    except (ValueError, KeyError, TypeError, msgspec.DecodeError) as exc:
        return _enc.encode((seq, [], [], [f"{type(exc).__name__}: {exc}"], "error"))


class WorkerPool:
    def __init__(self, config: EngineConfig, workers: int) -> None:
        self.config = config
        self.n = workers
        self.local = AnalyzerEngine(config) if workers == 0 else None
        self._seq = itertools.count(1)
        self._futures: dict[int, asyncio.Future[Any]] = {}
        self._procs: list[Any] = []
        self._inboxes: list[Any] = []
        self._outboxes: list[Any] = []
        self._readers: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[list[tuple[int, bytes]]] = [[] for _ in range(workers)]

    @property
    def registry(self) -> Any:
        """The strategy registry of the in-process engine, or a reference copy mirroring the workers."""
        if self.local is not None:
            return self.local.registry
        return self._mirror.registry

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.local is not None:
            return
        self._mirror = AnalyzerEngine(self.config)  # answers describe() without a round trip
        ctx = mp.get_context("spawn")
        for i in range(self.n):
            inbox, outbox = ctx.Queue(), ctx.Queue()
            p = ctx.Process(
                target=_worker_main, args=(asdict(self.config), inbox, outbox), daemon=True, name=f"analyzer-worker-{i}"
            )
            p.start()
            self._procs.append(p)
            self._inboxes.append(inbox)
            self._outboxes.append(outbox)
            t = threading.Thread(target=self._read, args=(outbox,), daemon=True, name=f"analyzer-reader-{i}")
            t.start()
            self._readers.append(t)
        log.info("analyzer workers started", workers=self.n)

    def _read(self, outbox: Any) -> None:
        while True:
            batch = outbox.get()
            if batch is None:
                return
            done = []
            for raw in batch:
                seq, signals, evaluated, errors, extra = _result_dec.decode(raw)
                fut = self._futures.pop(seq, None)
                if fut is not None:
                    done.append((fut, (EngineResult(signals, evaluated, errors), extra)))
            if done and self._loop is not None:
                self._loop.call_soon_threadsafe(_resolve_all, done)  # one loop wake-up per batch

    async def _call(self, worker: int, kind: str, payload: Any) -> tuple[EngineResult, Any]:
        assert self._loop is not None
        seq = next(self._seq)
        fut = self._loop.create_future()
        self._futures[seq] = fut
        self._inboxes[worker].put((kind, seq, payload))
        return await fut

    async def on_candle(self, c: Candle) -> EngineResult:
        if self.local is not None:
            return self.local.on_candle(c)
        assert self._loop is not None
        worker = partition_of(c.symbol, self.n)
        seq = next(self._seq)
        fut = self._loop.create_future()
        self._futures[seq] = fut
        pending = self._pending[worker]
        pending.append((seq, _enc.encode(c)))
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
        _, n = await self._call(partition_of(symbol, self.n), "warm", [_enc.encode(c) for c in candles])
        return int(n)

    async def control(self, op: str, name: str, symbol: str | None = None, params: dict[str, Any] | None = None) -> Any:
        """Apply to the reference engine first (validates, raises on bad input), then to every worker."""
        engine = self.local if self.local is not None else self._mirror
        result = engine.control(op, name, symbol, params)
        for w in range(self.n):
            await self._call(w, "control", (op, name, symbol, params))
        return result

    async def stop(self) -> None:
        for inbox in self._inboxes:
            inbox.put(("stop",))
        for p in self._procs:
            await asyncio.to_thread(p.join, 5)
            if p.is_alive():
                p.kill()
        for outbox in self._outboxes:
            outbox.put(None)  # ends the reader thread
        for fut in self._futures.values():
            fut.cancel()
        self._procs.clear()


def _resolve_all(done: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for fut, value in done:
        if not fut.done():
            fut.set_result(value)
