"""`roottrading up --split`: every service in its own process on a shared bus and database, supervised.

Why the standard library: each child is simply `python -m roottrading service NAME --port P` (the same command a
user or a container runs), so supervision is spawn, wait, restart with back-off, forward the stop signal. That
is a page of asyncio; a supervisor library (supervisord, circus) would add its own config format and control
protocol for nothing more. In containers the orchestrator supervises instead (deploy/docker-compose.yml).

- Children start in `DEFAULT_ORDER` (consumers before producers), each on its reference port; replica i > 0 of
  a service listens on `port + REPLICA_PORT_STEP * i`.
- A child that exits while the platform runs is restarted after a back-off that doubles from
  `backoff_initial_s` up to `backoff_max_s`; a child that stayed up `stable_after_s` starts again from the
  initial delay (a crash a day is not a crash loop).
- SIGINT/SIGTERM: every child gets SIGTERM (each host stops gracefully: intake, jobs, services, bus, database),
  the supervisor waits up to `stop_grace_s`, then SIGKILLs what is left, and exits 0.
- Children run in their own session, so a terminal's Ctrl-C reaches the supervisor only and the stop is
  ordered from one place; on Linux each child also gets SIGTERM if the supervisor itself dies (PDEATHSIG), so
  a killed supervisor does not leave orphans trading on their own.
- Each child's output (stdout and stderr) comes through a pipe and is written to the supervisor's stderr one
  whole line at a time. Children writing straight to one shared pipe would interleave: a write longer than
  the pipe's atomic size (4 KiB; a JSON line with a traceback) can be split around another process's line,
  and a log collector would then see two broken JSON lines instead of two events.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from roottrading.config import SERVICE_PORTS, Settings
from roottrading.runtime.instance import ENV as ENV_INSTANCE
from roottrading.runtime.registry import DEFAULT_ORDER

log = structlog.get_logger("roottrading.supervisor")
RISK_URL_ENV = "COORDINATOR_RISK_URL"

REPLICA_PORT_STEP = 100
OUTPUT_LINE_LIMIT = 4 * 1024 * 1024  # a child's log line longer than this is dropped, with a warning

# Services whose instances share the work through the bus's consumer groups with nothing else held in memory
# that another instance needs: the analyzer consumes `market.candles.<SYM>` in the group "analyzer", so
# instances split the symbols' partitions (Redis: partition leases; NATS: one durable per partition).
SHAREABLE = {"analyzer"}
# Services whose instances each own the symbols of the partitions they hold (bus/ownership.py): only a bus with
# exclusive partition leases (Redis Streams) can run several; on NATS every process reads every partition.
OWNED_BY_PARTITION = {
    "trader": "services/trader/ownership.py",
    "coordinator": "services/coordinator/ownership.py",
}
# Services that hold a whole-account view: active/standby on a leader lease in Redis (runtime/leader.py); one
# instance acts, the others keep their view warm and take over, reloading from the store, when it dies.
ACTIVE_STANDBY = {
    "risk": "services/risk/service.py",
    "portfolio": "services/portfolio/service.py",
}
# Why the others run once per platform for now.
SINGLE_REASONS = {
    "gateway": "two gateways would publish every candle twice",
    "scheduler": "two schedulers would run every job twice",
    "market": "it serves the dashboard's market API on one port",
    "stream": "it serves the dashboard's live WebSocket on one port",
    "logger": "two loggers would store every log line twice",
    "pnl": "it keeps the PnL view in memory",
}
# Services of the one-process platform that the reference has no port for: the next free ones.
SPLIT_PORTS = {
    **SERVICE_PORTS,
    "market": 5009,
    "stream": 5010,
    "notify": 5011,
    "telegram": 5012,
    "backtest": 5013,
    "universe": 5014,
}


class SplitConfigError(ValueError):
    """`up --split` cannot start with these settings or options; the message says what to change."""


def embedded_defaults_problem(settings: Settings) -> str | None:
    """Why these settings cannot run one process per service, or None. The memory bus lives inside one
    process and SQLite serialises writers of several processes on a file lock: both are one-process choices."""
    wrong = []
    if settings.bus_url.startswith("memory"):
        wrong.append("BUS_URL=redis://127.0.0.1:6379/0 (or nats://127.0.0.1:4222) instead of memory://")
    if settings.database_url.startswith("sqlite"):
        wrong.append("DATABASE_URL=postgresql+asyncpg://USER@127.0.0.1:5432/roottrading instead of SQLite")
    if not wrong:
        return None
    return (
        "up --split runs every service in its own process, so they need a shared bus and database; set "
        + " and ".join(wrong)
        + " (see docs/deployment.md), or run `roottrading up` for the one-process mode"
    )


def parse_replicas(text: str | None, bus_url: str = "redis://") -> dict[str, int]:
    """`analyzer=2,trader=1` -> {"analyzer": 2, "trader": 1}; refuses what cannot run that many times."""
    out: dict[str, int] = {}
    for item in (p.strip() for p in (text or "").split(",")):
        if not item:
            continue
        name, sep, count = item.partition("=")
        name = name.strip()
        if not sep or not count.strip().isdigit() or int(count) < 1:
            raise SplitConfigError(f"--replicas expects NAME=COUNT pairs like analyzer=2, got {item!r}")
        if name not in DEFAULT_ORDER:
            raise SplitConfigError(f"--replicas: unknown service {name!r}; known: {', '.join(DEFAULT_ORDER)}")
        n = int(count)
        if n > 1 and name in OWNED_BY_PARTITION and not bus_url.startswith(("redis://", "rediss://")):
            raise SplitConfigError(
                f"--replicas {name}={n}: several {name}s need BUS_URL=redis://... (each instance owns the symbols "
                "of the Redis Streams partitions it leases; NATS has no exclusive partitions)"
            )
        if n > 1 and name in ACTIVE_STANDBY and not bus_url.startswith(("redis://", "rediss://")):
            raise SplitConfigError(
                f"--replicas {name}={n}: several {name} instances need BUS_URL=redis://... (one leader at a time, "
                "elected by a lease in Redis; the others stand by)"
            )
        if n > 1 and name not in SHAREABLE and name not in OWNED_BY_PARTITION and name not in ACTIVE_STANDBY:
            reason = SINGLE_REASONS.get(name, "it does not share its work between instances")
            raise SplitConfigError(f"--replicas {name}={n}: {name} runs once per platform for now: {reason}")
        out[name] = n
    return out


def replicas_problem(settings: Settings, replicas: dict[str, int]) -> str | None:
    """Why these replicas cannot run with these settings, or None. Several traders must share one account: in
    demo mode each trader process would simulate an account of its own (the paper account)."""
    n = replicas.get("trader", 1)
    if n > 1 and settings.trading_mode != "live":
        return (
            f"--replicas trader={n}: several traders share one exchange account, so they need TRADING_MODE=live "
            "(Binance, its testnet, or the local simulator `python -m roottrading.exchange.fake_binance.cli` "
            "through BINANCE_REST_URL); in demo mode each would simulate an account of its own"
        )
    return None


@dataclass(frozen=True)
class ChildSpec:
    name: str
    replica: int
    port: int
    env: tuple[tuple[str, str], ...] = ()  # extra environment of this child (the coordinator's risk URLs)

    @property
    def label(self) -> str:
        return self.name if self.replica == 0 else f"{self.name}#{self.replica}"

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "roottrading", "service", self.name, "--port", str(self.port)]


def plan(settings: Settings, replicas: dict[str, int] | None = None) -> list[ChildSpec]:
    """The processes of a split platform, in start order."""
    ports = {**SPLIT_PORTS, **settings.service_ports}
    counts = replicas or {}
    env: tuple[tuple[str, str], ...] = ()
    n_risk = counts.get("risk", 1)
    if n_risk > 1 and not os.environ.get(RISK_URL_ENV):  # the user's explicit URLs win
        urls = ",".join(f"http://127.0.0.1:{ports['risk'] + REPLICA_PORT_STEP * i}" for i in range(n_risk))
        env = ((RISK_URL_ENV, urls),)  # the coordinator tries them in order; a standby answers 503
    out = []
    for name in DEFAULT_ORDER:
        for i in range(counts.get(name, 1)):
            out.append(ChildSpec(name, i, ports[name] + REPLICA_PORT_STEP * i, env if name == "coordinator" else ()))
    return out


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Linux: SIGTERM this child when the supervisor dies (prctl PR_SET_PDEATHSIG)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


@dataclass
class _Child:
    spec: ChildSpec
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    relay: asyncio.Task[None] | None = field(default=None, repr=False)


class Supervisor:
    def __init__(
        self,
        specs: Sequence[ChildSpec],
        *,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 30.0,
        stable_after_s: float = 60.0,
        stop_grace_s: float = 30.0,
    ) -> None:
        self.children = [_Child(s) for s in specs]
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.stable_after_s = stable_after_s
        self.stop_grace_s = stop_grace_s
        self._stopping = asyncio.Event()

    def request_stop(self) -> None:
        if not self._stopping.is_set():
            log.info("stop requested: stopping every service")
            self._stopping.set()

    async def run(self) -> int:
        """Run until SIGINT/SIGTERM, then stop every child; 0 when every child stopped within the grace."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self.request_stop)
        try:
            for child in self.children:
                child.task = asyncio.create_task(self._keep_running(child), name=f"supervise:{child.spec.label}")
            await self._stopping.wait()
            return await self._stop_all()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):
                    loop.remove_signal_handler(sig)

    async def _spawn(self, child: _Child) -> asyncio.subprocess.Process:
        child.starts += 1
        proc = await asyncio.create_subprocess_exec(
            *child.spec.argv(),
            # ENV_INSTANCE names its broadcast groups (runtime/instance.py)
            env={**os.environ, **_log_format_env(), ENV_INSTANCE: child.spec.label, **dict(child.spec.env)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            limit=OUTPUT_LINE_LIMIT,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        child.proc = proc
        assert proc.stdout is not None
        child.relay = asyncio.create_task(_relay_lines(proc.stdout, child.spec.label), name=f"relay:{child.spec.label}")
        log.info("service started", service=child.spec.label, pid=proc.pid, port=child.spec.port, start=child.starts)
        return proc

    async def _keep_running(self, child: _Child) -> None:
        delay = self.backoff_initial_s
        while not self._stopping.is_set():
            started = time.monotonic()
            proc = await self._spawn(child)
            code = await proc.wait()
            await _drained(child)  # its last words (a traceback) come before "service exited"
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= self.stable_after_s:
                delay = self.backoff_initial_s
            log.error("service exited; restarting", service=child.spec.label, code=code, restart_in_s=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, self.backoff_max_s)

    async def _stop_all(self) -> int:
        # First stop supervising (no restart can start behind our back), then stop what runs.
        for c in self.children:
            if c.task is not None:
                c.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await c.task
        running = [c for c in self.children if c.proc is not None and c.proc.returncode is None]
        for c in running:
            with contextlib.suppress(ProcessLookupError):
                c.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        clean = True
        if running:
            waits = [asyncio.create_task(c.proc.wait()) for c in running]  # type: ignore[union-attr]
            _, pending = await asyncio.wait(waits, timeout=self.stop_grace_s)
            if pending:
                clean = False
                for c in running:
                    if c.proc is not None and c.proc.returncode is None:
                        log.error("service did not stop in time; killing it", service=c.spec.label)
                        with contextlib.suppress(ProcessLookupError):
                            c.proc.kill()
                await asyncio.wait(pending)
        for c in self.children:
            await _drained(c)
        log.info("every service stopped", clean=clean)
        return 0 if clean else 1


def _log_format_env() -> dict[str, str]:
    """On a terminal, children log for a human as they would without the supervisor: their output is a pipe
    now, where LOG_FORMAT=auto would choose JSON. An explicit LOG_FORMAT (or LOG_JSON) is left alone."""
    if "LOG_FORMAT" in os.environ or "LOG_JSON" in os.environ or not sys.stderr.isatty():
        return {}
    return {"LOG_FORMAT": "console"}


async def _relay_lines(stream: asyncio.StreamReader, label: str) -> None:
    """Copy a child's output to our stderr, whole lines only (see the module's docstring for why)."""
    while True:
        try:
            line = await stream.readline()
        except ValueError:  # longer than OUTPUT_LINE_LIMIT: asyncio has dropped it
            log.warning("a log line of a service was too long and was dropped", service=label, limit=OUTPUT_LINE_LIMIT)
            continue
        if not line:
            return
        _write_line(line if line.endswith(b"\n") else line + b"\n")


def _write_line(line: bytes) -> None:
    err = sys.stderr
    raw = getattr(err, "buffer", None)
    if raw is not None:
        raw.write(line)
        raw.flush()
    else:  # a replaced stderr (a test's capture) takes text
        err.write(line.decode("utf-8", errors="replace"))
        err.flush()


async def _drained(child: _Child, timeout_s: float = 5.0) -> None:
    """Wait (bounded) until a finished child's output is all relayed: a grandchild holding the pipe open must
    not stall a restart."""
    if child.relay is None:
        return
    try:
        await asyncio.wait_for(asyncio.shield(child.relay), timeout_s)
    except TimeoutError:
        child.relay.cancel()
