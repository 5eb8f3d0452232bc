"""Soak-test client process: sends N random order intents through BinanceExchange like a trader would.

Every intent is stored in SQLite BEFORE it is sent (client order id `soak-<seq>`), and marked once the
exchange's answer is known. The process may be SIGKILLed at any line; on start it reconciles: for each
stored intent whose outcome is not recorded, it asks the exchange by client id and resends with the SAME id
only when the exchange does not have it. Fills (from the stream, FULL answers and a final myTrades sweep)
are stored by trade id. Exits 0 once every intent is settled and the final sweep is stored.

Usage: python -m tests.binance_trading.soak_client URL DB N SEED
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import sys
from decimal import Decimal

from roottrading.domain import Fill, Order, OrderType, Side
from roottrading.exchange.base import OrderUpdate
from roottrading.exchange.binance.adapter import BinanceExchange
from roottrading.exchange.binance.trading import FateUnknown
from roottrading.exchange.errors import (
    BinanceError,
    CancelRejected,
    NoSuchOrder,
    OrderFateUnknown,
    OrderNotFound,
    RateLimited,
)

API_KEY = "k" * 64
API_SECRET = "s" * 64
SYMBOL = "BTCUSDT"
SCHEMA = """
CREATE TABLE IF NOT EXISTS intents (seq INTEGER PRIMARY KEY, cid TEXT UNIQUE, action TEXT, side TEXT, type TEXT,
  qty TEXT, price TEXT, target TEXT, state TEXT, status TEXT, executed TEXT, error TEXT);
CREATE TABLE IF NOT EXISTS fills (trade_id TEXT PRIMARY KEY, cid TEXT, order_id TEXT, side TEXT, price TEXT,
  qty TEXT, quote TEXT, commission TEXT, commission_asset TEXT);
"""


class Client:
    def __init__(self, url: str, db: str, total: int, seed: int) -> None:
        self.db = sqlite3.connect(db, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        self.total, self.seed = total, seed
        ws = url.replace("http://", "ws://")
        self.ex = BinanceExchange(API_KEY, API_SECRET, base_url=url, ws_url=ws, timeout_s=1.5, fate_query_delay_s=0.2)

    # ------------------------------------------------------------------ records
    def store_fill(self, f: Fill) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO fills VALUES (?,?,?,?,?,?,?,?,?)",
            (
                f.trade_id,
                f.client_order_id,
                f.order_id,
                f.side.value,
                str(f.price),
                str(f.quantity),
                str(f.quote_quantity),
                str(f.commission),
                f.commission_asset,
            ),
        )

    def on_update(self, u: object) -> None:
        if isinstance(u, OrderUpdate) and u.fill is not None:
            self.store_fill(u.fill)

    def settle(self, cid: str, state: str, order: Order | None = None, error: str | None = None) -> None:
        self.db.execute(
            "UPDATE intents SET state=?, status=?, executed=?, error=? WHERE cid=?",
            (state, order.status.value if order else None, str(order.executed_quantity) if order else None, error, cid),
        )

    # ------------------------------------------------------------------ sending
    async def send_new(self, cid: str, side: str, type_: str, qty: str, price: str | None) -> None:
        while True:
            try:
                o = await self.ex.place_order(
                    symbol=SYMBOL,
                    side=Side(side),
                    type=OrderType(type_),
                    client_order_id=cid,
                    quantity=Decimal(qty),
                    price=Decimal(price) if price else None,
                )
            except OrderNotFound:
                continue  # the exchange does not have it: resend with the same id
            except OrderFateUnknown:
                return  # stays pending; reconciled later
            except RateLimited:
                await asyncio.sleep(1)
                continue
            except BinanceError as exc:
                if exc.code == -2010 and "Duplicate" in exc.msg:
                    await self.query_pending(cid)
                    return
                self.settle(cid, "rejected", error=f"{exc.code} {exc.msg}")
                return
            self.settle(cid, "acked", o)
            return

    async def send_cancel(self, cid: str, target: str) -> None:
        try:
            await self.ex.cancel_order(SYMBOL, target)
        except (CancelRejected, NoSuchOrder):
            pass  # already closed (or never placed): nothing to cancel
        except (OrderFateUnknown, RateLimited):
            return
        except BinanceError as exc:
            self.settle(cid, "rejected", error=f"{exc.code} {exc.msg}")
            return
        self.settle(cid, "done")

    async def query_pending(self, cid: str) -> bool:
        """True when the exchange has the order (recorded as acked)."""
        try:
            o = await self.ex.get_order(SYMBOL, cid)
        except NoSuchOrder:
            return False
        self.settle(cid, "acked", o)
        return True

    async def reconcile(self) -> None:
        rows = self.db.execute(
            "SELECT cid, action, side, type, qty, price, target FROM intents WHERE state='pending' ORDER BY seq"
        ).fetchall()
        for cid, action, side, type_, qty, price, target in rows:
            if action == "new":
                if not await self.query_pending(cid):
                    await self.send_new(cid, side, type_, qty, price)
            else:
                await self.send_cancel(cid, target)

    def intent(self, seq: int, last: Decimal) -> tuple:
        rng = random.Random(self.seed * 1_000_003 + seq)
        r = rng.random()
        side = rng.choice(("BUY", "SELL"))
        qty = str(Decimal(rng.randint(5, 40)) / 10_000)
        if r < 0.2:
            open_ = [
                c
                for (c,) in self.db.execute(
                    "SELECT cid FROM intents WHERE action='new' AND type='LIMIT' AND state='acked' AND status='NEW'"
                )
            ]
            if open_:
                return ("cancel", None, None, None, None, rng.choice(sorted(open_)))
        if r < 0.55:
            return ("new", side, "MARKET", qty, None, None)
        off = Decimal(rng.randint(-60, 60)) / 10_000  # within 0.6% of the last price: some fill, some rest
        return ("new", side, "LIMIT", qty, str((last * (1 + off)).quantize(Decimal("0.01"))), None)

    async def run(self) -> None:
        self.ex.subscribe_updates(self.on_update)
        await self.reconcile()
        while True:
            (n,) = self.db.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM intents").fetchone()
            if n >= self.total:
                break
            last = Decimal((await self.ex.rest.request("GET", "/api/v3/ticker/price", {"symbol": SYMBOL}))["price"])
            action, side, type_, qty, price, target = self.intent(n, last)
            cid = f"soak-{n}"
            self.db.execute(
                "INSERT INTO intents VALUES (?,?,?,?,?,?,?,?,?,NULL,NULL,NULL)",
                (n, cid, action, side, type_, qty, price, target, "pending"),
            )
            if action == "new":
                await self.send_new(cid, side, type_, qty, price)
            else:
                await self.send_cancel(cid, target)
        while self.db.execute("SELECT COUNT(*) FROM intents WHERE state='pending'").fetchone()[0]:
            await asyncio.sleep(0.2)
            await self.reconcile()
        # shutdown like a trader would: cancel what still rests (so nothing changes after the sweep) ...
        while await self.ex.open_orders(SYMBOL):
            try:
                await self.ex.rest.cancel_open_orders(SYMBOL)
            except (CancelRejected, RateLimited, OrderFateUnknown, FateUnknown):
                await asyncio.sleep(0.2)
        # ... then the final sweep: every fill of the account, and the final state of every acked order
        from_id = 0
        while True:
            trades = await self.ex.my_trades(SYMBOL, from_id=from_id, limit=1000)
            for f in trades:
                self.store_fill(f)
            if len(trades) < 1000:
                break
            from_id = int(trades[-1].trade_id) + 1
        for o in await self.ex.all_orders(SYMBOL):
            self.db.execute(
                "UPDATE intents SET status=?, executed=? WHERE cid=? AND state='acked'",
                (o.status.value, str(o.executed_quantity), o.client_order_id),
            )
        await self.ex.close()


def main() -> None:
    url, db, total, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    asyncio.run(Client(url, db, total, seed).run())


if __name__ == "__main__":
    main()
