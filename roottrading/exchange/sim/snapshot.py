"""Snapshot / restore of a SimEngine as plain JSON (the fake Binance server persists it between runs).

Everything needed to continue identically is saved: clock, id counters, balances, every order (with its
lock and stage), OCO lists, trades, per-symbol market state and in-flight orders. Symbol rules and the
SimConfig are *not* saved: the caller supplies them again on restore (they come from configuration).
Decimals are written as strings so nothing is lost.
"""

from __future__ import annotations

import heapq
from decimal import Decimal
from typing import Any

import msgspec

from roottrading.domain import Fill, OrderStatus, OrderType, Side, TimeInForce
from roottrading.exchange.filters import SymbolRules
from roottrading.exchange.sim.config import SimConfig
from roottrading.exchange.sim.engine import SimEngine
from roottrading.exchange.sim.matching import fill_to_trade, trade_to_fill
from roottrading.exchange.sim.state import IN_FLIGHT, OPEN_STATUSES, WAITING_TRIGGER, WORKING, Lock, SimOrder

FORMAT_VERSION = 1


def _s(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


def _d(v: str | None) -> Decimal | None:
    return None if v is None else Decimal(v)


def snapshot(engine: SimEngine) -> dict[str, Any]:
    """The engine state as a JSON-compatible dict."""
    lock_ids: dict[int, int] = {}
    locks: list[dict[str, Any]] = []
    orders = []
    for o in engine._orders.values():
        lock_ref = None
        if o.lock is not None:
            key = id(o.lock)
            if key not in lock_ids:
                lock_ids[key] = len(locks)
                locks.append({"asset": o.lock.asset, "amount": str(o.lock.amount), "owners": o.lock.owners})
            lock_ref = lock_ids[key]
        orders.append(
            {
                "order_id": o.order_id,
                "client_order_id": o.client_order_id,
                "symbol": o.symbol,
                "side": o.side.value,
                "type": o.type.value,
                "time_in_force": o.time_in_force.value,
                "quantity": str(o.quantity),
                "price": _s(o.price),
                "stop_price": _s(o.stop_price),
                "quote_order_qty": _s(o.quote_order_qty),
                "executed": str(o.executed),
                "cum_quote": str(o.cum_quote),
                "status": o.status.value,
                "created_at": o.created_at,
                "updated_at": o.updated_at,
                "stage": o.stage,
                "activate_at": o.activate_at,
                "lock": lock_ref,
                "list_id": o.list_id,
                "reject_reason": o.reject_reason,
            }
        )
    return {
        "version": FORMAT_VERSION,
        "now": engine.now,
        "next_ids": [engine._next_order_id, engine._next_trade_id, engine._next_list_id],
        "balances": {a: [str(engine.ledger.free[a]), str(engine.ledger.locked.get(a, 0))] for a in engine.ledger.free},
        "locks": locks,
        "orders": orders,
        "lists": {str(k): [engine._list_client_ids[k], [o.order_id for o in v]] for k, v in engine._lists.items()},
        "trades": {s: [msgspec.to_builtins(trade_to_fill(x)) for x in t] for s, t in engine._trades.items() if t},
        "market": {
            s: {"last": _s(b.last), "bid": _s(b.bid), "ask": _s(b.ask), "budget": _s(b.budget)}
            for s, b in engine.books.items()
        },
    }


def to_json(engine: SimEngine) -> bytes:
    return msgspec.json.encode(snapshot(engine))


def restore(
    data: dict[str, Any] | bytes | str,
    rules: dict[str, SymbolRules] | list[SymbolRules],
    config: SimConfig | None = None,
) -> SimEngine:
    """Rebuild an engine from `snapshot`/`to_json` output. Raises ValueError on an unknown format version
    or an order whose symbol has no rules."""
    if not isinstance(data, dict):
        data = msgspec.json.decode(data, type=dict[str, Any])
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(f"unsupported simulator snapshot version {data.get('version')!r}")
    eng = SimEngine(rules, config, start_time=int(data["now"]))
    eng._next_order_id, eng._next_trade_id, eng._next_list_id = data["next_ids"]
    for asset, (free, locked) in data["balances"].items():
        eng.ledger.free[asset] = Decimal(free)
        eng.ledger.locked[asset] = Decimal(locked)
    locks = [Lock(x["asset"], Decimal(x["amount"]), int(x["owners"])) for x in data["locks"]]
    for x in data["orders"]:
        if x["symbol"] not in eng.books:
            raise ValueError(f"snapshot has an order on {x['symbol']!r} but no rules were given for it")
        o = SimOrder(
            x["order_id"],
            x["client_order_id"],
            x["symbol"],
            Side(x["side"]),
            OrderType(x["type"]),
            Decimal(x["quantity"]),
            _d(x["price"]),
            _d(x["stop_price"]),
            TimeInForce(x["time_in_force"]),
            x["created_at"],
            _d(x["quote_order_qty"]),
        )
        o.executed, o.cum_quote = Decimal(x["executed"]), Decimal(x["cum_quote"])
        o.status, o.updated_at, o.stage = OrderStatus(x["status"]), x["updated_at"], x["stage"]
        o.is_open = o.status in OPEN_STATUSES
        o.activate_at, o.list_id, o.reject_reason = x["activate_at"], x["list_id"], x["reject_reason"]
        o.lock = locks[x["lock"]] if x["lock"] is not None else None
        eng._orders[o.order_id] = o
        eng._by_client[(o.symbol, o.client_order_id)] = o
        if o.is_open:
            book = eng.books[o.symbol]
            eng._open[o.order_id] = o
            book.open_count += 1
            if o.stage == IN_FLIGHT:
                heapq.heappush(eng._pending, (o.activate_at, o.order_id, o))
                if o.type in (OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT):
                    book.algo_count += 1
            elif o.stage == WAITING_TRIGGER:
                book.algo_count += 1
                eng._arm(o, book)
            elif o.stage == WORKING:
                eng._rest(o, book)
    for k, (list_cid, ids) in data["lists"].items():
        eng._lists[int(k)] = [eng._orders[i] for i in ids]
        eng._list_client_ids[int(k)] = list_cid
    for sym, trades in data["trades"].items():
        eng._trades[sym] = [fill_to_trade(msgspec.convert(t, Fill)) for t in trades]
    for sym, m in data["market"].items():
        if sym in eng.books:
            b = eng.books[sym]
            b.last, b.bid, b.ask, b.budget = _d(m["last"]), _d(m["bid"]), _d(m["ask"]), _d(m["budget"])
    return eng
