"""The fake Binance's trading account: a SimEngine fed by the replayed market, listen keys and the user-data
stream, Binance-shaped JSON renderings, and persistence of the engine to a snapshot file.

Why the engine is fed from `market.listeners`: fills must follow the same prices the clients see on the
public streams. Why persistence writes synchronously after each accepted request: an order the server
acknowledged must survive a server restart, like on a real exchange (fills caused by the market are written
a moment later, debounced).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import string
import time
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from roottrading.domain import Order
from roottrading.exchange.base import BalanceUpdate, ExchangeUpdate, OrderUpdate
from roottrading.exchange.errors import BinanceError
from roottrading.exchange.fake_binance.rest import symbol_info
from roottrading.exchange.fake_binance.wsapi_user import USER_EVENTS
from roottrading.exchange.filters import parse_exchange_info
from roottrading.exchange.sim.config import SimConfig
from roottrading.exchange.sim.engine import SimEngine
from roottrading.exchange.sim.matching import TradeRecord
from roottrading.exchange.sim.snapshot import restore, to_json

if TYPE_CHECKING:
    from roottrading.exchange.fake_binance.app import FakeBinanceState

log = structlog.get_logger(__name__)
_ALNUM = string.ascii_letters + string.digits
_enc = msgspec.json.Encoder()


def gen_key(n: int = 64) -> str:
    """A Binance-looking API key / secret / listenKey (alphanumeric)."""
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


def f8(v: Decimal | None) -> str:
    """Binance's 8-decimal rendering."""
    return f"{(v or Decimal(0)):.8f}"


class TradingAccount:
    """Everything the trading routes share. Reachable as `state.trading` (set by the extension)."""

    def __init__(self, state: FakeBinanceState) -> None:
        cfg = state.config
        self.state = state
        self.api_key = cfg.api_key or gen_key()
        self.api_secret = cfg.api_secret or gen_key()
        market = state.market
        self.rules = parse_exchange_info({"symbols": [symbol_info(s, market.series[s]) for s in market.series]})
        sim_cfg = SimConfig(maker_fee=Decimal(cfg.maker_fee), taker_fee=Decimal(cfg.taker_fee))
        self.state_file = Path(cfg.state_file) if cfg.state_file else None
        if self.state_file is not None and self.state_file.exists():
            self.engine = restore(self.state_file.read_bytes(), self.rules, sim_cfg)
            log.info("fake_binance.state_restored", file=str(self.state_file), orders=len(self.engine._orders))
        else:
            self.engine = SimEngine(
                self.rules, sim_cfg, {a: Decimal(v) for a, v in cfg.balances.items()}, start_time=market.now_ms
            )
            for sym, price in market.last_price.items():  # a price before the first replayed trade
                bid, ask = market.book[sym]
                self.engine.on_trade(sym, market.now_ms, Decimal(repr(price)))
                self.engine.on_book(sym, market.now_ms, Decimal(repr(bid)), Decimal(repr(ask)))
        self.listen_keys: dict[str, float] = {}  # key -> expiry (wall clock s)
        self.cancel_ids: dict[int, str] = {}  # order id -> client id of the cancel request (executionReport c)
        self.order_counts: dict[str, list[int]] = {"10s": [-1, 0], "1d": [-1, 0]}  # window, count
        self._dirty = False
        self._flush_handle: asyncio.TimerHandle | None = None
        self._drop_task: asyncio.Task[None] | None = None
        self.stats = {"orders": 0, "events": 0, "saves": 0}
        self.engine.subscribe(self._on_engine)
        market.listeners.append(self._on_market)
        state.hub.validators.append(self.valid_listen_key)

    # ------------------------------------------------------------------ clock
    def now_ms(self) -> int:
        """The trading side's wall clock (timestamps / recvWindow are checked against it, as on Binance)."""
        return int(time.time() * 1000) + self.state.config.clock_skew_ms

    # ------------------------------------------------------------------ market -> engine
    def _on_market(self, stream: str, p: dict[str, Any]) -> None:
        try:
            if stream.endswith("@trade"):
                self.engine.on_trade(p["s"], int(p["T"]), Decimal(p["p"]), Decimal(p["q"]))
            elif stream.endswith("@bookTicker"):
                self.engine.on_book(p["s"], self.state.market.now_ms, Decimal(p["b"]), Decimal(p["a"]))
        except BinanceError as exc:  # a symbol without rules: nothing to match
            log.warning("fake_binance.engine_feed_failed", stream=stream, error=str(exc))

    # ------------------------------------------------------------------ engine -> user-data stream
    def _on_engine(self, update: ExchangeUpdate) -> None:
        self.stats["events"] += 1
        self.mark_dirty()
        if isinstance(update, OrderUpdate):
            if update.execution_type == "TRIGGERED":
                return  # a simulator extra; Binance sends nothing when a stop triggers
            payload = self.execution_report(update)
        elif isinstance(update, BalanceUpdate):
            payload = {
                "e": "outboundAccountPosition",
                "E": update.time,
                "u": update.time,
                "B": [{"a": b.asset, "f": f8(b.free), "l": f8(b.locked)} for b in update.balances],
            }
        else:
            return
        self.publish_user(payload)

    def publish_user(self, payload: dict[str, Any]) -> None:
        raw = None
        hub = self.state.hub
        for key in (*self.listen_keys, USER_EVENTS):  # listenKey streams, WebSocket API subscriptions
            if hub.has_subscribers(key):
                raw = raw or _enc.encode(payload)
                hub.publish(key, raw)

    def execution_report(self, u: OrderUpdate) -> dict[str, Any]:
        o, f = u.order, u.fill
        oid = int(o.exchange_order_id or 0)
        sim = self.engine._orders.get(oid)
        c, orig = o.client_order_id, ""
        if u.execution_type == "CANCELED":
            c, orig = self.cancel_ids.pop(oid, "") or gen_key(22), o.client_order_id
        return {
            "e": "executionReport",
            "E": u.time,
            "s": o.symbol,
            "c": c,
            "S": o.side.value,
            "o": o.type.value,
            "f": o.time_in_force.value,
            "q": f8(o.quantity),
            "p": f8(o.price),
            "P": f8(o.stop_price),
            "F": "0.00000000",
            "g": u.order_list_id,
            "C": orig,
            "x": u.execution_type,
            "X": o.status.value,
            "r": "NONE" if u.execution_type != "REJECTED" else (o.reject_reason or "UNKNOWN"),
            "i": oid,
            "l": f8(f.quantity if f else None),
            "z": f8(o.executed_quantity),
            "L": f8(f.price if f else None),
            "n": f8(f.commission) if f else "0",
            "N": f.commission_asset if f else None,
            "T": f.time if f else o.updated_at,
            "t": int(f.trade_id) if f else -1,
            "I": oid * 2 + (1 if f else 0),
            "w": o.status.value in ("NEW", "PARTIALLY_FILLED") and (sim is None or sim.stage == 2),
            "m": bool(f and f.is_maker),
            "M": True,
            "O": o.created_at,
            "Z": f8(o.cumulative_quote),
            "Y": f8(f.quote_quantity if f else None),
            "Q": f8(sim.quote_order_qty if sim is not None else None),
            "W": o.created_at,
            "V": "NONE",
        }

    # ------------------------------------------------------------------ listen keys
    def valid_listen_key(self, name: str) -> bool:
        exp = self.listen_keys.get(name)
        return exp is not None and exp > time.time()

    def create_listen_key(self) -> str:
        now = time.time()
        for key, exp in self.listen_keys.items():
            if exp > now:  # Binance returns the account's active key
                self.listen_keys[key] = now + self.state.config.listen_key_ttl_s
                return key
        key = gen_key(60)
        self.listen_keys[key] = now + self.state.config.listen_key_ttl_s
        self.start_drops()
        return key

    def keepalive(self, key: str) -> bool:
        if not self.valid_listen_key(key):
            return False
        self.listen_keys[key] = time.time() + self.state.config.listen_key_ttl_s
        return True

    def close_listen_key(self, key: str) -> bool:
        if self.listen_keys.pop(key, None) is None:
            return False
        self.drop_user_streams(key)
        return True

    def drop_user_streams(self, key: str | None = None) -> int:
        """Close user-data connections (all, or those on `key`): the fault 'dropped user-data stream'. All
        includes the WebSocket API connections (wsapi_user.py)."""
        n = 0
        for conn in list(self.state.hub.connections):
            hit = (
                key in conn.streams
                if key is not None
                else any(s in self.listen_keys or s == USER_EVENTS for s in conn.streams)
            )
            if hit:
                conn.overflowed = True  # the hub's sender closes the socket on its next wake-up
                with contextlib.suppress(asyncio.QueueFull):
                    conn.queue.put_nowait(("", b""))
                n += 1
        self.state.stats["user_stream_drops"] += n
        return n

    def start_drops(self) -> None:
        """The fault 'user-data streams dropped every N s', from the first user-data subscription on."""
        every = self.state.config.user_stream_drop_every_s
        if every and self._drop_task is None:

            async def loop() -> None:
                while True:
                    await asyncio.sleep(every)
                    self.drop_user_streams()

            self._drop_task = asyncio.get_running_loop().create_task(loop())

    # ------------------------------------------------------------------ rate limits
    def count_order(self) -> tuple[int, int] | None:
        """Count a new order; None when a limit is exceeded (the caller answers -1015)."""
        now = time.time()
        cfg = self.state.config
        for name, size, limit in (("10s", 10, cfg.order_limit_10s), ("1d", 86_400, cfg.order_limit_1d)):
            w = self.order_counts[name]
            if w[0] != int(now // size):
                w[0], w[1] = int(now // size), 0
            if w[1] >= limit:
                return None
        for name in ("10s", "1d"):
            self.order_counts[name][1] += 1
        return self.order_counts["10s"][1], self.order_counts["1d"][1]

    # ------------------------------------------------------------------ persistence
    def mark_dirty(self) -> None:
        if self.state_file is None:
            return
        self._dirty = True
        if self._flush_handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._flush_handle = loop.call_later(0.2, self._flush_later)

    def _flush_later(self) -> None:
        self._flush_handle = None
        if self._dirty:
            self.save()

    def save(self) -> None:
        """Atomically write the engine snapshot (tmp file + rename)."""
        if self.state_file is None:
            return
        tmp = self.state_file.with_suffix(self.state_file.suffix + ".tmp")
        tmp.write_bytes(to_json(self.engine))
        os.replace(tmp, self.state_file)
        self._dirty = False
        self.stats["saves"] += 1

    # ------------------------------------------------------------------ renderings
    def order_json(self, o: Order, kind: str = "query") -> dict[str, Any]:
        """Binance's order object: `query` (GET order, openOrders, allOrders), `result` (new order RESULT),
        `cancel` (DELETE order)."""
        oid = int(o.exchange_order_id or 0)
        sim = self.engine._orders.get(oid)
        list_id = sim.list_id if sim is not None else -1
        base: dict[str, Any] = {"symbol": o.symbol}
        if kind == "cancel":
            base["origClientOrderId"] = o.client_order_id
        base.update({"orderId": oid, "orderListId": list_id})
        base["clientOrderId"] = self.cancel_ids.get(oid, o.client_order_id) if kind == "cancel" else o.client_order_id
        if kind == "result":
            base["transactTime"] = o.created_at
        elif kind == "cancel":
            base["transactTime"] = self.engine.now
        base.update(
            {
                "price": f8(o.price),
                "origQty": f8(o.quantity),
                "executedQty": f8(o.executed_quantity),
                "origQuoteOrderQty": f8(sim.quote_order_qty if sim is not None else None),
                "cummulativeQuoteQty": f8(o.cumulative_quote),
                "status": o.status.value,
                "timeInForce": o.time_in_force.value,
                "type": o.type.value,
                "side": o.side.value,
            }
        )
        if o.stop_price is not None or kind == "query":
            base["stopPrice"] = f8(o.stop_price)
        if kind == "query":
            base.update(
                {
                    "icebergQty": "0.00000000",
                    "time": o.created_at,
                    "updateTime": o.updated_at,
                    "isWorking": sim is not None and sim.stage == 2,
                }
            )
        if kind != "cancel":
            base["workingTime"] = o.created_at if sim is None or sim.stage == 2 else -1
        base["selfTradePreventionMode"] = "NONE"
        return base

    def trade_json(self, t: TradeRecord) -> dict[str, Any]:
        """A myTrades row from an engine trade record."""
        tid, oid, _cid, sym, side, price, qty, quote, fee, fee_asset, ts, maker = t
        sim = self.engine._orders.get(oid)
        return {
            "symbol": sym,
            "id": tid,
            "orderId": oid,
            "orderListId": sim.list_id if sim is not None else -1,
            "price": f8(price),
            "qty": f8(qty),
            "quoteQty": f8(quote),
            "commission": f8(fee),
            "commissionAsset": fee_asset,
            "time": ts,
            "isBuyer": side.value == "BUY",
            "isMaker": maker,
            "isBestMatch": True,
        }
