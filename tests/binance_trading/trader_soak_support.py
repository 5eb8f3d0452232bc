"""Helpers of the trader-service soak test (test_trader_soak.py): processes, request stream, final audit.

Why a separate module: the test itself should read as the scenario (publish, kill, restart, settle, compare);
process plumbing, the deterministic request generator and the exchange-vs-store audit live here.
Everything talks to real processes: fake Binance (`roottrading.exchange.fake_binance.cli`) and the trader
(`python -m roottrading service trader`, TRADING_MODE=live) over HTTP, WebSocket, Redis and SQLite.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import httpx

from roottrading.domain import OrderRequest, OrderType, Side
from roottrading.exchange.binance.signing import HmacSigner, signed_query

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
API_KEY = "k" * 64
API_SECRET = "s" * 64
SYMBOL = "BTCUSDT"
INITIAL = {"USDT": Decimal(10_000), "BTC": Decimal(1)}
STRATEGIES = ("alpha", "beta", "gamma")
# Moderate fault rates. The trader's live adapter has a 10 s HTTP timeout (not configurable from settings), so
# an accepted-then-unanswered order blocks the trader ~10 s: kept rare. The request-weight window is 1 s so that
# weight limits stay out of the way (the adapter paces on the fake's used-weight header before it has read
# exchangeInfo's limits, and the trader spends a lot of weight: see the report on GET /account per fill).
FAULTS = [
    "--order-timeout-prob",
    "0.0015",
    "--order-timeout-s",
    "11",
    "--order-5xx-prob",
    "0.02",
    "--timestamp-error-prob",
    "0.02",
    "--rest-5xx-prob",
    "0.01",
    "--user-stream-drop-every-s",
    "5",
]


def wait_http(url: str, deadline_s: float, proc: subprocess.Popen | None = None, log: Path | None = None) -> Any:
    """GET `url` until it answers 200 (returns the JSON); AssertionError with the log tail otherwise."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        try:
            r = httpx.get(url, timeout=1.0)
            if r.status_code == 200:
                return r.json()
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
    raise AssertionError(f"{url} did not answer (exit code {proc.poll() if proc else None}):\n{tail}")


@dataclass
class FakeBinance:
    """The simulator as a subprocess; restartable over its state file (with or without faults)."""

    port: int
    state: Path
    log: Path
    proc: subprocess.Popen | None = None
    # The simulator stamps orders and trades with its replay time. The trader asks for missed fills with
    # myTrades(startTime = order created_at - 60 s by the wall clock), as is right on Binance, so the replay
    # must never be behind the wall clock: it starts 3 h ahead (more than the adapter's 1 h limit on
    # following a server clock, so signing keeps the wall clock, which is what the fake checks).
    start_ms: int = field(default_factory=lambda: (int(time.time()) // 60) * 60_000 - 500 * 60_000 + 3 * 3_600_000)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, faults: bool) -> None:
        cmd = [
            PY,
            "-m",
            "roottrading.exchange.fake_binance.cli",
            "--port",
            str(self.port),
            "--symbols",
            SYMBOL,
            "--api-key",
            API_KEY,
            "--api-secret",
            API_SECRET,
            "--state",
            str(self.state),
            "--speed",
            "300",
            "--synthetic-count",
            "20000",
            "--start-ms",
            str(self.start_ms),
            "--order-limit-10s",
            "100000",
            "--weight-limit",
            "1000000",
            "--weight-window-s",
            "1",
            *[f"--balance={a}={v}" for a, v in INITIAL.items()],
            *(FAULTS if faults else []),
        ]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        wait_http(f"{self.url}/api/v3/ping", 20, self.proc, self.log)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
        self.proc = None

    def price(self) -> Decimal | None:
        try:
            r = httpx.get(f"{self.url}/api/v3/ticker/price", params={"symbol": SYMBOL}, timeout=2)
        except httpx.TransportError:
            return None
        return Decimal(r.json()["price"]) if r.status_code == 200 else None

    def signed(self, method: str, path: str, params: dict[str, Any]) -> Any:
        """A signed call, retried politely while injected 5xx/-1021 faults may still answer."""
        last = ""
        for _ in range(30):
            q = signed_query({**params, "timestamp": int(time.time() * 1000)}, HmacSigner(API_SECRET))
            try:
                r = httpx.request(method, f"{self.url}{path}?{q}", headers={"X-MBX-APIKEY": API_KEY}, timeout=5)
            except httpx.TransportError as exc:
                last = repr(exc)
            else:
                if r.status_code == 200:
                    return r.json()
                if r.status_code == 400 and r.json().get("code") == -2011:
                    return []  # cancel of open orders when none is open
                last = f"{r.status_code} {r.text}"
            time.sleep(0.3)
        raise AssertionError(f"{method} {path}: {last}")

    def all_orders(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        from_id = 1
        while True:
            page = self.signed("GET", "/api/v3/allOrders", {"symbol": SYMBOL, "orderId": from_id, "limit": 1000})
            out += page
            if len(page) < 1000:
                return out
            from_id = page[-1]["orderId"] + 1

    def my_trades(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        from_id = 0
        while True:
            page = self.signed("GET", "/api/v3/myTrades", {"symbol": SYMBOL, "fromId": from_id, "limit": 1000})
            out += page
            if len(page) < 1000:
                return out
            from_id = page[-1]["id"] + 1


@dataclass
class Trader:
    """`python -m roottrading service trader` in live mode against the fake; SIGKILL and restart at will."""

    tmp: Path
    http_port: int
    exchange_url: str
    bus_url: str
    bus_prefix: str
    log: Path
    proc: subprocess.Popen | None = None
    starts: int = 0
    # EXCHANGE: the native adapter, or ccxt:binance (the same fake through ccxt); the soak runs both.
    exchange: str = "binance"
    database_url: str | None = None  # default: a SQLite file of its own (one trader)
    instance: str | None = None  # ROOTTRADING_INSTANCE: names its broadcast groups (several traders)

    @property
    def db(self) -> Path:
        return self.tmp / "trader.db"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BINANCE_", "BUS_", "DATABASE_"))}
        env.update(
            {
                "PYTHONPATH": str(ROOT),
                "TRADING_MODE": "live",
                "SYMBOLS": SYMBOL,
                "QUOTE_ASSET": "USDT",
                "BINANCE_API_KEY": API_KEY,
                "BINANCE_SECRET_KEY": API_SECRET,
                "BINANCE_REST_URL": self.exchange_url,
                "BINANCE_WS_URL": self.exchange_url.replace("http://", "ws://"),
                "BUS_URL": self.bus_url,
                "BUS_PREFIX": self.bus_prefix,
                "DATABASE_URL": self.database_url or f"sqlite+aiosqlite:///{self.db}",
                "DATA_DIR": str(self.tmp),
                "API_TOKEN": "soak-token",
                "LOG_LEVEL": "INFO",
                "LOG_JSON": "true",
                "ROOTTRADING_CONFIG": str(self.tmp / "none.yaml"),
                "EXCHANGE": self.exchange,
                "CCXT_POLL_INTERVAL_S": "1.0",
            }
        )
        if self.instance:
            env["ROOTTRADING_INSTANCE"] = self.instance
        return env

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as f:
            f.write(f"\n===== trader start #{self.starts} =====\n".encode())
        self.proc = subprocess.Popen(
            [PY, "-m", "roottrading", "service", "trader", "--port", str(self.http_port)],
            cwd=self.tmp,
            env=self.env(),
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def health(self) -> dict[str, Any] | None:
        """The trader component's health (its counters), None while it is not serving."""
        try:
            r = httpx.get(f"http://127.0.0.1:{self.http_port}/health", timeout=1.0)
        except httpx.TransportError:
            return None
        return r.json().get("components", {}).get("trader") if r.status_code == 200 else None

    def wait_owner(self, deadline_s: float = 40) -> dict[str, Any]:
        """Until this trader owns the symbol (its order-request partition) and has reconciled it: a restart
        takes over only once the dead process's partition lease expired (RedisBus lease_ms = 10 s)."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            h = self.health() or {}
            if h.get("owns") == "all" or (h.get("owns") and h.get("takeovers", 0) > 0):
                return h
            if not self.alive():
                break
            time.sleep(0.2)
        raise AssertionError(f"trader never took the symbol over:\n{self.log.read_text(errors='replace')[-3000:]}")

    def wait_ready(self, deadline_s: float = 30) -> dict[str, Any]:
        """Until HTTP answers: by then start() has run (rules, load, reconcile, re-announce)."""
        wait_http(f"http://127.0.0.1:{self.http_port}/health", deadline_s, self.proc, self.log)
        return self.health() or {}

    def kill(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:  # it died by itself: that is a failure of the soak
            raise AssertionError(
                f"trader exited with {self.proc.returncode}:\n{self.log.read_text(errors='replace')[-3000:]}"
            )
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        """Graceful stop (SIGTERM): intake stops, in-flight handlers finish and ack."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("trader did not stop within 30 s of SIGTERM") from None
        self.proc = None


def make_request(i: int, last: Decimal, now_ms: int) -> OrderRequest:
    """Request number `i` (deterministic id and content for a given last price)."""
    rng = random.Random(1_000_003 * 11 + i)
    strategy = rng.choice(STRATEGIES)
    rid = f"soak-{i:04d}"
    tick = Decimal("0.01")
    if rng.random() < 0.6:  # an entry
        typ = OrderType.MARKET if rng.random() < 0.5 else OrderType.LIMIT
        price = (last * (1 + Decimal(rng.randint(-40, 15)) / 10_000)).quantize(tick) if typ is OrderType.LIMIT else None
        qty = quote = None
        if rng.random() < 0.6:
            qty = Decimal(rng.randint(30, 120)) / 100_000
        else:
            quote = Decimal(rng.randint(15, 50))
        stops: dict[str, Any] = {}
        if rng.random() < 0.5:
            stops = {
                "stop_loss": (last * Decimal("0.997")).quantize(tick),
                "take_profit": (last * Decimal("1.003")).quantize(tick),
            }
        elif rng.random() < 0.3:
            stops = {"trailing_pct": Decimal("0.2")}
        return OrderRequest(
            id=rid,
            time=now_ms,
            symbol=SYMBOL,
            side=Side.BUY,
            type=typ,
            quantity=qty,
            quote_quantity=quote,
            price=price,
            strategy=strategy,
            **stops,
        )
    typ = OrderType.MARKET if rng.random() < 0.7 else OrderType.LIMIT
    price = (last * (1 + Decimal(rng.randint(-15, 30)) / 10_000)).quantize(tick) if typ is OrderType.LIMIT else None
    qty = None if rng.random() < 0.5 else Decimal(rng.randint(30, 200)) / 100_000
    return OrderRequest(
        id=rid, time=now_ms, symbol=SYMBOL, side=Side.SELL, type=typ, quantity=qty, price=price, strategy=strategy
    )


@dataclass
class Audit:
    """Exchange vs the trader's store, as the done-when criteria state them. `problems` empty = agreement."""

    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def check(self, cond: bool, what: str) -> None:
        if not cond:
            self.problems.append(what)


# Reconciliation re-sends an intent the exchange does not know only once it is older than the adapter's send
# timeout (10 s) + 1 s (services/trader/ownership.py): a final audit must settle after that window.
RESEND_GUARD_MS = 11_000
NEWEST_INTENT_SQL = "SELECT max(created_at) FROM trade_executions WHERE status = 'PENDING_NEW'"


def newest_intent_ms_sqlite(db: Path) -> int | None:
    con = sqlite3.connect(db)
    try:
        row = con.execute(NEWEST_INTENT_SQL).fetchone()
    finally:
        con.close()
    return int(row[0]) if row and row[0] is not None else None


def wait_past_resend_guard(newest_intent_ms: int | None) -> None:
    """Until the newest stored intent is older than the re-send guard (live mode: the wall clock is the
    platform clock), so the reconciliation that follows may re-send it. A deadline computed from the store."""
    if newest_intent_ms is None:
        return
    while (remaining := newest_intent_ms + RESEND_GUARD_MS + 200 - int(time.time() * 1000)) > 0:
        time.sleep(min(remaining / 1000, 1.0))


ORDERS_SQL = (
    "SELECT order_id, exchange_order_id, status, executed_quantity, quantity, reject_reason FROM trade_executions"
)
FILLS_SQL = (
    "SELECT trade_id, order_id, exchange_order_id, side, price, quantity, quote_quantity, "
    "commission, commission_asset FROM trade_fills"
)
CYCLES_SQL = "SELECT id, status FROM trade_cycles"


@dataclass
class StoreRows:
    """What the audit reads from the trader's store: orders by client id, fills, cycle statuses."""

    orders: dict[str, tuple[Any, ...]]
    fills: list[tuple[Any, ...]]
    cycles: dict[str, str]


def read_sqlite(db: Path) -> StoreRows:
    con = sqlite3.connect(db)
    try:
        return StoreRows(
            {r[0]: tuple(r) for r in con.execute(ORDERS_SQL)},
            [tuple(r) for r in con.execute(FILLS_SQL)],
            {r[0]: r[1] for r in con.execute(CYCLES_SQL)},
        )
    finally:
        con.close()


async def read_postgres(dsn: str) -> StoreRows:
    """The same rows from PostgreSQL (several trader processes share one database there)."""
    import asyncpg

    con = await asyncpg.connect(dsn.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return StoreRows(
            {r[0]: tuple(r) for r in await con.fetch(ORDERS_SQL)},
            [tuple(r) for r in await con.fetch(FILLS_SQL)],
            {r[0]: r[1] for r in await con.fetch(CYCLES_SQL)},
        )
    finally:
        await con.close()


def audit(
    db: Path | StoreRows,
    orders: list[dict[str, Any]],
    trades: list[dict[str, Any]],
    account: dict[str, Any],
    buy_request_ids: list[str],
) -> Audit:
    from roottrading import ids

    a = Audit()
    store = read_sqlite(db) if isinstance(db, Path) else db
    rows, fills, cycles = store.orders, store.fills, store.cycles

    # 1. no client order id twice on the exchange; exchange orders == the trader's records, one to one
    dup = [cid for cid, n in Counter(o["clientOrderId"] for o in orders).items() if n > 1]
    a.check(not dup, f"client order ids used twice on the exchange: {dup[:10]}")
    exchange = {o["clientOrderId"]: (o["status"], Decimal(o["executedQty"])) for o in orders}
    on_exchange_rows = {cid for cid, r in rows.items() if r[2] != "REJECTED"}
    missing_locally = sorted(set(exchange) - set(rows))
    a.check(not missing_locally, f"exchange orders the trader has no record of: {missing_locally[:10]}")
    never_sent = sorted(on_exchange_rows - set(exchange))
    a.check(
        not never_sent,
        "trader records (not REJECTED) the exchange does not have: "
        f"{[(c, rows[c][2], rows[c][5]) for c in never_sent[:10]]}",
    )
    rejected_but_there = sorted(cid for cid, r in rows.items() if r[2] == "REJECTED" and cid in exchange)
    a.check(
        not rejected_but_there,
        f"recorded REJECTED but on the exchange: {[(c, exchange[c], rows[c][5]) for c in rejected_but_there[:10]]}",
    )
    differ = [
        (cid, exchange[cid], (rows[cid][2], Decimal(rows[cid][3])))
        for cid in sorted(exchange)
        if cid in rows and (rows[cid][2], Decimal(rows[cid][3])) != exchange[cid]
    ]
    a.check(not differ, f"status/executedQty differ (exchange, trader) for {len(differ)} orders: {differ[:10]}")
    exid = [
        (cid, o["orderId"], rows[cid][1])
        for o in orders
        if (cid := o["clientOrderId"]) in rows and str(rows[cid][1]) != str(o["orderId"])
    ]
    a.check(not exid, f"exchange order id not recorded: {exid[:10]}")
    open_local = [(cid, r[2]) for cid, r in rows.items() if r[2] in ("PENDING_NEW", "NEW", "PARTIALLY_FILLED")]
    a.check(not open_local, f"orders still open in the trader after settling: {open_local[:10]}")

    # 2. every trade_fills row is an exchange trade and vice versa (same order, qty, price, commission)
    ex_trades = {str(t["id"]): t for t in trades}
    local = {str(f[0]): f for f in fills}
    a.check(len(local) == len(fills), "a trade id stored twice")
    only_ex = sorted(set(ex_trades) - set(local), key=int)
    only_local = sorted(set(local) - set(ex_trades))
    a.check(not only_ex, f"exchange trades missing from trade_fills: {only_ex[:10]}")
    a.check(not only_local, f"trade_fills rows that are not exchange trades: {only_local[:10]}")
    by_oid = {str(o["orderId"]): o["clientOrderId"] for o in orders}
    bad = []
    for tid in set(ex_trades) & set(local):
        t, f = ex_trades[tid], local[tid]
        if (
            by_oid.get(str(t["orderId"])) != f[1]
            or Decimal(t["qty"]) != Decimal(f[5])
            or Decimal(t["price"]) != Decimal(f[4])
            or Decimal(t["commission"]) != Decimal(f[7])
            or t["commissionAsset"] != f[8]
            or ("BUY" if t["isBuyer"] else "SELL") != f[3]
        ):
            bad.append(tid)
    a.check(not bad, f"trade_fills rows that differ from the exchange's trade: {sorted(bad)[:10]}")
    # executedQty of every order == the sum of its recorded fills
    per_order: dict[str, Decimal] = {}
    for f in fills:
        per_order[f[1]] = per_order.get(f[1], Decimal(0)) + Decimal(f[5])
    sums = [
        (cid, ex[1], per_order.get(cid, Decimal(0)))
        for cid, ex in exchange.items()
        if ex[1] != per_order.get(cid, Decimal(0))
    ]
    a.check(not sums, f"executedQty != sum of trade_fills: {sums[:10]}")

    # 3. balances == initial + fills - commissions, to the last unit (Binance shows 8 decimals). The quote of
    # a fill is taken as the trader's recorded price x quantity (both checked exactly against the exchange
    # above): the simulator fills at prices off the tick grid, so a quote has more than 8 decimals, which the
    # trader stores exactly when it comes from a FULL answer and rounded when it comes from myTrades.
    expected = dict(INITIAL)
    for f in fills:
        sign = 1 if f[3] == "BUY" else -1
        expected["BTC"] += sign * Decimal(f[5])
        expected["USDT"] -= sign * Decimal(f[4]) * Decimal(f[5])
        expected[f[8]] = expected.get(f[8], Decimal(0)) - Decimal(f[7])
    expected = {k: v.quantize(Decimal("1e-8"), ROUND_HALF_EVEN) for k, v in expected.items()}
    rough = [f[0] for f in fills if abs(Decimal(f[6]) - Decimal(f[4]) * Decimal(f[5])) >= Decimal("1e-8")]
    a.check(not rough, f"trade_fills quote_quantity != price x quantity (beyond the 8th decimal): {rough[:10]}")
    actual = {b["asset"]: Decimal(b["free"]) + Decimal(b["locked"]) for b in account["balances"]}
    actual = {k: v for k, v in actual.items() if v or k in expected}
    a.check(actual == expected, f"balances: exchange {actual} != initial + fills - commissions {expected}")
    locked = {b["asset"]: b["locked"] for b in account["balances"] if Decimal(b["locked"])}
    a.check(not locked, f"funds still locked after every order was cancelled: {locked}")

    # 4. every BUY request became exactly one cycle (the bus lost nothing, redelivery created nothing)
    lost = [rid for rid in buy_request_ids if ids.cycle_id(rid) not in cycles]
    a.check(not lost, f"{len(lost)} BUY requests without a cycle: {lost[:10]}")
    st = Counter(rows[c][2] for c in rows)
    a.counts = {
        "exchange_orders": len(orders),
        "trader_orders": len(rows),
        "trades": len(trades),
        "fills": len(fills),
        "cycles": len(cycles),
        **{f"orders_{k}": v for k, v in sorted(st.items())},
        **{f"cycles_{k}": v for k, v in sorted(Counter(cycles.values()).items())},
    }
    return a
