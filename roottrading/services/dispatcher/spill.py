"""The dispatcher's durable buffer: an append-only, fsync'd log per route plus an index of what was forwarded.

Files under DATA_DIR/dispatcher/:
* `<route>.log`: one JSON line per buffered message `{"s": seq, "t": topic, "k": key, "ts": ms, "r": raw}`.
  `append` returns only after the line is fsync'd (group commit: concurrent appends share one fsync), so the
  source message can be acknowledged: from then on the log owns it.
* `<route>.idx`: the highest seq forwarded (written to a temp file, fsync'd, renamed: never half-written).
  Forwarding is in seq order, so one number is the whole index. It is updated every `index_every` forwards
  or `index_interval_s`; a crash between a forward and the index update re-forwards a few messages with their
  original ids, which the target dedupes (NATS Nats-Msg-Id; idempotent handlers on Redis).

Memory: at most `memory_max` pending entries are held in RAM; beyond that they live only on disk and are read
back in order (from a remembered byte offset) as the in-memory ones are forwarded. When everything is forwarded
the files are truncated, so the log does not grow without bound.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import msgspec
import structlog

log = structlog.get_logger(__name__)


class Entry(msgspec.Struct, frozen=True):
    s: int
    t: str
    k: str | None
    ts: int
    r: str


_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(Entry)


@dataclass
class _SyncState:
    written: int = 0
    synced: int = 0


class SpillLog:
    def __init__(
        self,
        directory: Path,
        name: str,
        *,
        memory_max: int = 10_000,
        index_every: int = 100,
        index_interval_s: float = 0.2,
    ) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = directory / f"{name}.log"
        self.idx_path = directory / f"{name}.idx"
        self.memory_max = memory_max
        self.index_every = index_every
        self.index_interval_s = index_interval_s
        self.memory: deque[Entry] = deque()
        self.disk_only = 0  # pending entries not loaded in memory
        self.read_offset: int | None = None  # byte offset of the first disk-only entry
        self.next_seq = 1
        self.forwarded_seq = 0  # highest seq forwarded (in memory; >= what the index file says)
        self.indexed_seq = 0
        self.spilled_total = 0
        self._sync = _SyncState()
        self._sync_task: asyncio.Task[None] | None = None
        self._idx_task: asyncio.Task[None] | None = None
        self._loop_time_indexed = 0.0
        self._recover()
        self._f = open(self.log_path, "ab")  # noqa: SIM115 - held open for the life of the route

    # --- recovery ------------------------------------------------------------------------------------
    def _recover(self) -> None:
        """Reload what was spilled and not yet forwarded; drop a torn last line (its source was never acked)."""
        try:
            self.forwarded_seq = self.indexed_seq = int(self.idx_path.read_text().strip() or 0)
        except FileNotFoundError:
            pass
        except ValueError:
            log.error(
                "dispatcher index unreadable; re-forwarding the whole spill log (ids dedupe)", path=str(self.idx_path)
            )
        self.next_seq = self.forwarded_seq + 1
        if not self.log_path.exists():
            return
        good_end, offset = 0, 0
        with open(self.log_path, "rb") as f:
            for line in f:
                start = offset
                offset += len(line)
                if not line.endswith(b"\n"):
                    break
                try:
                    e = _dec.decode(line)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    break
                good_end = offset
                self.next_seq = max(self.next_seq, e.s + 1)
                if e.s <= self.forwarded_seq:
                    continue
                if len(self.memory) < self.memory_max and self.read_offset is None:
                    self.memory.append(e)
                else:
                    if self.read_offset is None:
                        self.read_offset = start
                    self.disk_only += 1
        self.next_seq = max(self.next_seq, self.forwarded_seq + 1)  # the log may have been compacted
        if good_end < offset:
            log.warning("dropping a torn line at the end of the spill log", path=str(self.log_path))
            with open(self.log_path, "r+b") as f:
                f.truncate(good_end)
        if self.pending:
            log.info("dispatcher spill log recovered", path=str(self.log_path), pending=self.pending)

    # --- append --------------------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        return len(self.memory) + self.disk_only

    async def append(self, topic: str, key: str | None, ts: int, raw: bytes) -> None:
        """Write one entry and return once it is on disk (fsync'd)."""
        e = Entry(s=self.next_seq, t=topic, k=key, ts=ts, r=raw.decode())
        self.next_seq += 1
        pos = self._f.tell()
        self._f.write(_enc.encode(e) + b"\n")
        if len(self.memory) < self.memory_max and self.disk_only == 0:
            self.memory.append(e)
        else:
            if self.disk_only == 0:
                self.read_offset = pos
            self.disk_only += 1
        self.spilled_total += 1
        self._sync.written += 1
        mine = self._sync.written
        while self._sync.synced < mine:
            if self._sync_task is None:
                self._sync_task = asyncio.create_task(self._fsync())
            await asyncio.shield(self._sync_task)

    async def _fsync(self) -> None:
        upto = self._sync.written
        try:
            self._f.flush()
            await asyncio.to_thread(os.fsync, self._f.fileno())
            self._sync.synced = max(self._sync.synced, upto)
        finally:
            self._sync_task = None

    # --- forwarding side -----------------------------------------------------------------------------
    def peek(self) -> Entry | None:
        if not self.memory and self.disk_only:
            self._reload()
        return self.memory[0] if self.memory else None

    def _reload(self) -> None:
        """Read the next disk-only entries back into memory, in order."""
        assert self.read_offset is not None
        self._f.flush()
        loaded = 0
        with open(self.log_path, "rb") as f:
            f.seek(self.read_offset)
            while loaded < self.memory_max and self.disk_only:
                line = f.readline()
                if not line.endswith(b"\n"):
                    break
                self.memory.append(_dec.decode(line))
                self.read_offset += len(line)
                self.disk_only -= 1
                loaded += 1
        if not self.disk_only:
            self.read_offset = None

    async def done(self, entry: Entry) -> None:
        """Mark the head entry forwarded; persist the index now and then; compact when empty."""
        head = self.memory.popleft()
        assert head.s == entry.s, "entries are forwarded in order"
        self.forwarded_seq = entry.s
        now = asyncio.get_running_loop().time()
        if (
            self.forwarded_seq - self.indexed_seq >= self.index_every
            or not self.pending
            or now - self._loop_time_indexed >= self.index_interval_s
        ):
            await self.write_index()
        if not self.pending and self._sync_task is None and self._sync.synced == self._sync.written:
            self._compact()

    async def write_index(self) -> None:
        """Persist forwarded_seq. One write at a time; a cancelled caller does not abort the write (the thread
        finishes and the next call, e.g. close(), waits for it), so the index never goes backwards."""
        while self._idx_task is not None:
            await asyncio.gather(asyncio.shield(self._idx_task), return_exceptions=True)
        seq = self.forwarded_seq
        if seq <= self.indexed_seq:
            return
        tmp = self.idx_path.with_suffix(f".idx.{os.getpid()}.tmp")

        def write() -> None:
            with open(tmp, "w") as f:
                f.write(str(seq))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.idx_path)

        async def run() -> None:
            try:
                await asyncio.to_thread(write)
                self.indexed_seq = max(self.indexed_seq, seq)
                self._loop_time_indexed = asyncio.get_running_loop().time()
            finally:
                self._idx_task = None

        self._idx_task = asyncio.create_task(run())
        await asyncio.shield(self._idx_task)

    def _compact(self) -> None:
        """Everything forwarded: empty the log (seq keeps counting; the index stays valid)."""
        self._f.truncate(0)
        self._f.seek(0)

    async def close(self) -> None:
        if self._sync_task is not None:
            await asyncio.gather(self._sync_task, return_exceptions=True)
        await self.write_index()
        self._f.close()
