"""Issue 18's HA test: `roottrading up --split` with two instances each of analyzer, coordinator, risk, trader and
portfolio (separate processes, Redis Streams + PostgreSQL, TRADING_MODE=live) against the Binance simulator with
faults (unanswered orders, 5xx, -1021, user-stream drops: the trader soak's).

While signals trade, the acting instance of each service (the trader and the coordinator that own the symbol's
partition, the risk and portfolio leaders, an analyzer) is SIGKILLed, three rounds; the supervisor restarts
them and trading must go on after each round. Then the risk leader's kill switch closes every position and the
platform is stopped, and the audit is exact:
- no signal decided twice (at most one of accepted/rejected per signal, one row per decision);
- the trader soak's exchange-vs-store audit (trader_soak_support.audit): no client order id twice on the
  exchange, exchange orders == stored orders and trades == stored fills one to one, balances == initial +
  fills - commissions to the last unit, every accepted entry exactly one cycle;
- no reservation left dangling: every reservation released, every cycle terminal (the kill switch closed them),
  every accepted entry's reservation exists once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from roottrading import ids
from roottrading.bus import partition_of
from roottrading.runtime.supervisor import REPLICA_PORT_STEP, SPLIT_PORTS
from tests.binance_trading.conftest import free_port
from tests.binance_trading.trader_soak_support import (
    API_KEY,
    API_SECRET,
    SYMBOL,
    FakeBinance,
    audit,
    read_postgres,
)
from tests.runtime.split_support import (
    Lines,
    alive,
    drop_keys,
    free_ports_with_replicas,
    pg_database,
    started_pids,
    wait_until,
)

__all__ = ["pg_database"]  # the fixture, imported for pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("analyzer", "coordinator", "risk", "trader", "portfolio")
REPLICAS = ",".join(f"{s}=2" for s in SERVICES)
ROUNDS = 3
PARTITION = partition_of(SYMBOL, 4)  # RedisBus's default partition count, as the service processes use it
OPEN_ORDER = ("PENDING_NEW", "NEW", "PARTIALLY_FILLED")


@dataclass
class Split:
    """The running platform: its ports, token and the supervisor's output."""

    ports: dict[str, int]
    token: str
    out: Lines
    dsn: str

    def url(self, svc: str, replica: int) -> str:
        return f"http://127.0.0.1:{self.ports[svc] + REPLICA_PORT_STEP * replica}"

    def health(self, svc: str, replica: int) -> dict[str, Any] | None:
        try:
            r = httpx.get(f"{self.url(svc, replica)}/health", headers=self.auth, timeout=2)
        except httpx.HTTPError:
            return None
        if r.status_code != 200:
            return None
        details: dict[str, Any] | None = r.json().get("components", {}).get(svc)
        return details

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def acting(self, svc: str, round_: int) -> tuple[int] | None:
        """(replica,) of the instance that acts for the symbol: the owner of its partition (trader,
        coordinator), the leader (risk, portfolio); the analyzers take turns."""
        if svc == "analyzer":
            return (round_ % 2,)
        for i in (0, 1):
            h = self.health(svc, i) or {}
            if svc in ("trader", "coordinator"):
                owns = h.get("owns")
                if isinstance(owns, list) and PARTITION in owns:
                    return (i,)
            elif (h.get("leadership") or {}).get("role") == "leader":
                return (i,)
        return None

    def sql(self, query: str) -> list[asyncpg.Record]:
        async def run() -> list[asyncpg.Record]:
            con = await asyncpg.connect(self.dsn.replace("postgresql+asyncpg://", "postgresql://"))
            try:
                return list(await con.fetch(query))
            finally:
                await con.close()

        return asyncio.run(run())

    def count(self, query: str) -> int:
        return int(self.sql(query)[0][0])

    def fills(self) -> int:
        try:
            return self.count("SELECT count(*) FROM trade_fills")
        except asyncpg.UndefinedTableError:  # `up --split` has not migrated the database yet
            return 0


def _label(svc: str, replica: int) -> str:
    return svc if replica == 0 else f"{svc}#{replica}"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeBinance]:
    fb = FakeBinance(free_port(), tmp_path / "engine.json", tmp_path / "fake.log")
    fb.start(faults=True)
    try:
        yield fb
    finally:
        fb.stop()


def _details(raw: Any) -> dict[str, Any]:
    if isinstance(raw, str):
        loaded: dict[str, Any] = json.loads(raw)
        return loaded
    return dict(raw or {})


def test_two_of_each_service_sigkilled_repeatedly_exact_audit(
    redis_url: str, pg_database: str, unique: str, tmp_path: Path, fake: FakeBinance
) -> None:
    t0 = time.monotonic()
    names = list(SPLIT_PORTS)
    ports = dict(zip(names, free_ports_with_replicas(len(names)), strict=True))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("BINANCE_", "BUS_", "DATABASE_", "COORDINATOR_"))},
        "PYTHONPATH": str(ROOT),
        "LOG_FORMAT": "json",
        "DATA_DIR": str(tmp_path / "data"),
        "ROOTTRADING_CONFIG": str(tmp_path / "none.yaml"),
        "TRADING_MODE": "live",
        "SYMBOLS": SYMBOL,
        "QUOTE_ASSET": "USDT",
        "BINANCE_API_KEY": API_KEY,
        "BINANCE_SECRET_KEY": API_SECRET,
        "BINANCE_REST_URL": fake.url,
        "BINANCE_WS_URL": fake.url.replace("http://", "ws://"),
        "BUS_URL": redis_url,
        "BUS_PREFIX": f"rt-ha-{unique}",
        "DATABASE_URL": pg_database,
        "SERVICE_PORTS": json.dumps(ports),
        "API_TOKEN": f"ha-{unique}",
        # the warm-up's signals trade too, small stakes so that funds last; quick reconciliations
        "COORDINATOR_MAX_SIGNAL_AGE_S": "0",
        "COORDINATOR_STAKE_QUOTE": "100",
        "COORDINATOR_ALLOW_MULTIPLE_CYCLES": "true",  # more entries in flight when the SIGKILLs come
        "TRADER_RECONCILE_S": "3",
        "PORTFOLIO_RECONCILE_S": "5",
    }
    up = subprocess.Popen(
        [sys.executable, "-m", "roottrading", "up", "--split", "--replicas", REPLICAS],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = Lines(up)
    pf = Split(ports, f"ha-{unique}", out, pg_database)
    pids: set[int] = set()
    killed_at = 0
    kills: list[dict[str, int]] = []
    try:
        base = wait_until(pf.fills, 90, "a first fill", out, every=0.5)
        for r in range(ROUNDS):
            # mid-flow: find who acts for the symbol now, then SIGKILL one instance of every service at once
            targets = {s: wait_until(lambda s=s, r=r: pf.acting(s, r), 40, f"the acting {s}", out)[0] for s in SERVICES}
            running = started_pids(out)
            for svc, i in targets.items():
                os.kill(running[_label(svc, i)][0], signal.SIGKILL)
            kills.append(targets)

            def restarted(targets: dict[str, int] = targets, running: dict[str, tuple[int, int]] = running) -> bool:
                now = started_pids(out)
                return all(now[_label(s, i)][1] > running[_label(s, i)][1] for s, i in targets.items())

            wait_until(restarted, 40, f"round {r}: every killed instance restarted", out)
            # trading goes on: new fills once the survivors (or the restarted) took the symbol over
            base = wait_until(lambda b=base: (n := pf.fills()) > b and n, 90, f"round {r}: a fill after", out, 0.5)
        pids = {pid for pid, _ in started_pids(out).values()}
        # settle: the kill switch (through the risk leader, to every trader) closes every cycle; entries in
        # flight are refused, reservations released
        (leader,) = wait_until(lambda: pf.acting("risk", 0), 30, "the risk leader", out)
        killed_at = int(time.time() * 1000)
        r = httpx.post(f"{pf.url('risk', leader)}/kill-switch", headers=pf.auth, timeout=10)
        assert r.status_code == 200, r.text

        def settled() -> bool:
            live = pf.count("SELECT count(*) FROM trade_cycles WHERE status NOT IN ('COMPLETED', 'CANCELED', 'FAILED')")
            held = pf.count("SELECT count(*) FROM pocket_reservations WHERE status <> 'released'")
            orders = pf.count(f"SELECT count(*) FROM trade_executions WHERE status IN {OPEN_ORDER}")
            return live == held == orders == 0

        wait_until(settled, 90, "every cycle closed, every reservation released, no order open", out, 0.5)
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(timeout=60)
        finally:
            if up.poll() is None:
                up.kill()
                up.wait()
    try:
        orders = fake.all_orders()
        trades = fake.my_trades()
        account = fake.signed("GET", "/api/v3/account", {})
        store = asyncio.run(read_postgres(pg_database))
        decisions = pf.sql("SELECT signal_id, decision, reason, details FROM decisions")
        reservations = pf.sql("SELECT id, status, cycle_id FROM pocket_reservations")
        closes = Counter(
            (r[0], r[1], r[2] >= killed_at) for r in pf.sql("SELECT status, close_reason, updated_at FROM trade_cycles")
        )
    finally:
        drop_keys(redis_url, f"rt-ha-{unique}")
    elapsed = time.monotonic() - t0

    # no signal decided twice
    per_signal = Counter(d["signal_id"] for d in decisions if d["decision"] in ("accepted", "rejected"))
    twice = [s for s, n in per_signal.items() if n > 1]
    assert not twice, f"signals decided twice: {twice[:10]}"
    rows = Counter((d["signal_id"], d["decision"]) for d in decisions)
    assert max(rows.values()) == 1
    entries = [_details(d["details"]) for d in decisions if d["decision"] == "accepted"]
    entries = [e for e in entries if e.get("stage") == "order"]
    buys = [e["request_id"] for e in entries]
    # exchange vs store, exact (the trader soak's audit); every accepted entry is one cycle
    result = audit(store, orders, trades, account, buys)
    # no reservation dangling: each accepted entry's reservation exists once, is released, for its cycle
    res = {r["id"]: (r["status"], r["cycle_id"]) for r in reservations}
    missing = [e["reservation_id"] for e in entries if e["reservation_id"] not in res]
    held = [(k, v) for k, v in res.items() if v[0] != "released"]
    wrong_cycle = [
        e["reservation_id"]
        for e in entries
        if res.get(e["reservation_id"], ("", ""))[1] != ids.cycle_id(e["request_id"])
    ]
    print(
        f"\nHA split: {ROUNDS} rounds of SIGKILLs {kills}, {len(decisions)} decisions ({len(buys)} entries), "
        f"{elapsed:.1f}s\n  {result.counts}\n  rejections: "
        f"{Counter(d['reason'][:40] for d in decisions if d['decision'] != 'accepted').most_common(6)}\n"
        f"  cycles closed (status, reason, after the kill switch): {dict(closes)}"
    )
    assert not result.problems, "\n".join(result.problems)
    assert not missing and not held and not wrong_cycle, (missing[:5], held[:5], wrong_cycle[:5])
    assert len(kills) == ROUNDS
    assert result.counts["trades"] >= ROUNDS + 1  # it really traded, also after each round
    assert up.returncode == 0, out.text()
    assert not [p for p in pids if alive(p)]
