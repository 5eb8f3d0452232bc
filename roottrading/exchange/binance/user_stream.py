"""Binance Spot user-data stream: parsing of its events and the listenKey WebSocket connection.

Why: order fills and balance changes must reach the trader seconds after they happen, not at the next poll.
The connection keeps its listenKey alive (PUT every 30 min), reconnects with jittered exponential backoff,
and after every (re)connection asks its owner to re-sync from REST, because whatever happened while the
socket was down was not pushed and never will be.

Formats (Binance spot docs; samples in tests/binance_samples.py): `executionReport`,
`outboundAccountPosition`, `balanceUpdate`, `listStatus`, `listenKeyExpired`, `eventStreamTerminated`, raw
or wrapped as {"stream", "data"} (combined streams) or {"subscriptionId", "event"} (WebSocket API).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
import msgspec
import structlog
import websockets

from roottrading.domain import Balance, Fill, Order, OrderStatus, OrderType, Side, TimeInForce
from roottrading.exchange.base import BalanceUpdate, OrderUpdate
from roottrading.exchange.binance.parse import ParseError
from roottrading.exchange.errors import ExchangeError

log = structlog.get_logger(__name__)
ZERO = Decimal(0)

# Binance statuses outside our enum, mapped to their meaning for the order's owner.
_STATUS_ALIASES = {"EXPIRED_IN_MATCH": OrderStatus.EXPIRED, "PENDING_NEW": OrderStatus.PENDING_NEW}
_FILL_EXEC_TYPES = ("TRADE", "CALCULATED")


class BalanceDelta(msgspec.Struct, frozen=True, kw_only=True):
    """Binance `balanceUpdate`: a deposit, withdrawal or transfer changed `asset` by `delta`."""

    time: int
    asset: str
    delta: Decimal
    clear_time: int


class StreamControl(msgspec.Struct, frozen=True, kw_only=True):
    """A control event (listenKeyExpired, eventStreamTerminated) or one we deliberately do not map
    (listStatus: the legs' own executionReports carry everything the trader needs)."""

    kind: str
    time: int


UserEvent = OrderUpdate | BalanceUpdate | BalanceDelta | StreamControl


def _dec(obj: dict[str, Any], key: str) -> Decimal:
    try:
        return Decimal(str(obj[key]))
    except KeyError:
        raise ParseError(f"missing field {key!r}") from None
    except ArithmeticError:
        raise ParseError(f"field {key!r} is not a decimal: {obj[key]!r}") from None


def _opt_price(obj: dict[str, Any], key: str) -> Decimal | None:
    if obj.get(key) in (None, ""):
        return None
    v = _dec(obj, key)
    return v if v > 0 else None


def map_status(raw: str) -> OrderStatus:
    try:
        return OrderStatus(raw)
    except ValueError:
        if raw in _STATUS_ALIASES:
            return _STATUS_ALIASES[raw]
        raise ParseError(f"unknown order status {raw!r}") from None


def map_order_type(raw: str) -> OrderType:
    try:
        return OrderType(raw)
    except ValueError:
        raise ParseError(f"order type {raw!r} is not supported by the platform") from None


def map_tif(raw: str | None) -> TimeInForce:
    """GTC/IOC/FOK as is; Binance's other values (GTD, GTX) behave like GTC until they expire."""
    try:
        return TimeInForce(raw or "GTC")
    except ValueError:
        return TimeInForce.GTC


def parse_execution_report(e: dict[str, Any]) -> OrderUpdate:
    """executionReport -> OrderUpdate. The order's own client id is `C` (origClientOrderId) for cancels,
    else `c`. A fill is attached for TRADE events with a positive quantity and price (Binance sends a few
    TRADE events with L=0, whose price is unknown: those update the order state only)."""
    try:
        cid = e.get("C") or e["c"]
        symbol, exec_type = e["s"], e["x"]
        side = Side(e["S"])
        order_id = int(e["i"])
    except KeyError as exc:
        raise ParseError(f"executionReport: missing field {exc.args[0]!r}") from None
    except (ValueError, TypeError) as exc:
        raise ParseError(f"executionReport: bad field ({exc})") from None
    event_time = int(e.get("E", 0))
    order = Order(
        client_order_id=cid,
        symbol=symbol,
        side=side,
        type=map_order_type(e.get("o", "")),
        quantity=_dec(e, "q"),
        status=map_status(e.get("X", "")),
        price=_opt_price(e, "p"),
        stop_price=_opt_price(e, "P"),
        time_in_force=map_tif(e.get("f")),
        exchange_order_id=str(order_id),
        executed_quantity=_dec(e, "z"),
        cumulative_quote=_dec(e, "Z") if "Z" in e else ZERO,
        created_at=int(e.get("O", event_time)),
        updated_at=int(e.get("T", event_time)),
        reject_reason=e["r"] if e.get("r") not in (None, "", "NONE") else None,
    )
    fill = None
    if exec_type in _FILL_EXEC_TYPES:
        qty, price = _dec(e, "l"), _dec(e, "L")
        trade_id = int(e.get("t", -1))
        if qty > 0 and price > 0 and trade_id >= 0:
            quote = _dec(e, "Y") if e.get("Y") not in (None, "") and Decimal(str(e["Y"])) > 0 else price * qty
            fill = Fill(
                trade_id=str(trade_id),
                order_id=str(order_id),
                client_order_id=cid,
                symbol=symbol,
                side=side,
                price=price,
                quantity=qty,
                quote_quantity=quote,
                commission=_dec(e, "n") if e.get("n") else ZERO,
                commission_asset=e.get("N") or "",
                time=int(e.get("T", event_time)),
                is_maker=bool(e.get("m")),
            )
    return OrderUpdate(
        time=event_time, execution_type=exec_type, order=order, fill=fill, order_list_id=int(e.get("g", -1))
    )


def parse_account_position(e: dict[str, Any]) -> BalanceUpdate:
    try:
        balances = tuple(Balance(asset=b["a"], free=_dec(b, "f"), locked=_dec(b, "l")) for b in e["B"])
    except (KeyError, TypeError) as exc:
        raise ParseError(f"outboundAccountPosition: bad balances ({exc!r})") from None
    return BalanceUpdate(time=int(e.get("E", 0)), balances=balances)


def unwrap(obj: Any) -> dict[str, Any]:
    """The event object of a raw, combined-stream ({"stream","data"}) or WebSocket-API ({"event"}) frame."""
    if isinstance(obj, dict):
        data, event = obj.get("data"), obj.get("event")
        if isinstance(data, dict) and "stream" in obj:
            return data
        if isinstance(event, dict) and "subscriptionId" in obj:
            return event
        return obj
    raise ParseError(f"user-data frame is not a JSON object: {type(obj).__name__}")


def parse_user_event(raw: bytes | str | dict[str, Any]) -> UserEvent:
    """One user-data frame -> OrderUpdate | BalanceUpdate | BalanceDelta | StreamControl; ParseError otherwise."""
    if isinstance(raw, dict):
        obj = raw
    else:
        try:
            obj = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise ParseError(f"malformed JSON: {exc}") from None
    e = unwrap(obj)
    kind = e.get("e")
    if kind == "executionReport":
        return parse_execution_report(e)
    if kind == "outboundAccountPosition":
        return parse_account_position(e)
    if kind == "balanceUpdate":
        try:
            return BalanceDelta(
                time=int(e.get("E", 0)), asset=e["a"], delta=_dec(e, "d"), clear_time=int(e.get("T", 0))
            )
        except KeyError as exc:
            raise ParseError(f"balanceUpdate: missing field {exc.args[0]!r}") from None
    if kind in ("listStatus", "listenKeyExpired", "eventStreamTerminated", "externalLockUpdate"):
        return StreamControl(kind=kind, time=int(e.get("E", 0)))
    raise ParseError(f"unknown user-data event {kind!r}")


class UserDataStream:
    """Keeps one listenKey WebSocket open: `<ws_url>/ws/<listenKey>`.

    `create_key()` / `keepalive(key)` are the REST calls; `on_event` gets every parsed event; `on_connected`
    runs after each successful (re)connection, before events are read (the owner re-syncs there)."""

    def __init__(
        self,
        ws_url: str,
        *,
        create_key: Callable[[], Awaitable[str]],
        keepalive: Callable[[str], Awaitable[None]],
        on_event: Callable[[UserEvent], Awaitable[None] | None],
        on_connected: Callable[[bool], Awaitable[None]] | None = None,
        keepalive_s: float = 30 * 60,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        seed: int | None = None,
    ) -> None:
        self.ws_url = ws_url.rstrip("/")
        self._create_key = create_key
        self._keepalive = keepalive
        self._on_event = on_event
        self._on_connected = on_connected
        self.keepalive_s = keepalive_s
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self._rng = random.Random(seed)
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.listen_key: str | None = None
        self.stats = {"connects": 0, "events": 0, "parse_errors": 0, "keepalives": 0}

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="binance-user-stream")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.connected.clear()

    async def _run(self) -> None:
        failures = 0
        first = True
        while True:
            try:
                self.listen_key = await self._create_key()
                async with websockets.connect(
                    f"{self.ws_url}/ws/{self.listen_key}", open_timeout=10, ping_interval=None, max_size=2**22
                ) as ws:
                    self.stats["connects"] += 1
                    if self._on_connected is not None:
                        await self._on_connected(not first)
                    first = False
                    failures = 0
                    self.connected.set()
                    keeper = asyncio.create_task(self._keep_alive(self.listen_key))
                    try:
                        async for frame in ws:
                            if await self._handle(frame):
                                break  # listenKey expired: get a new one
                    finally:
                        keeper.cancel()
                        self.connected.clear()
                log.warning("binance.user_stream_closed")
            except asyncio.CancelledError:
                raise
            except (
                OSError,
                websockets.WebSocketException,
                TimeoutError,
                ExchangeError,
                httpx.HTTPError,
                KeyError,
                ValueError,
            ) as exc:
                # A failed connection attempt (network, REST key creation, resync) must not kill the
                # stream: log it and reconnect with backoff.
                failures += 1
                log.warning("binance.user_stream_error", error=type(exc).__name__, detail=str(exc)[:200])
            delay = self._rng.uniform(self.backoff_s, min(self.backoff_max_s, self.backoff_s * 2**failures))
            await asyncio.sleep(delay)

    async def _keep_alive(self, key: str) -> None:
        while True:
            await asyncio.sleep(self.keepalive_s)
            try:
                await self._keepalive(key)
                self.stats["keepalives"] += 1
            except (ExchangeError, OSError, httpx.HTTPError) as exc:  # the next connection creates a fresh key
                log.warning("binance.listen_key_keepalive_failed", error=type(exc).__name__)

    async def _handle(self, frame: str | bytes) -> bool:
        try:
            event = parse_user_event(frame)
        except ParseError as exc:
            self.stats["parse_errors"] += 1
            log.warning("binance.user_stream_bad_frame", reason=exc.reason)
            return False
        self.stats["events"] += 1
        if isinstance(event, StreamControl) and event.kind in ("listenKeyExpired", "eventStreamTerminated"):
            log.warning("binance.user_stream_control", kind=event.kind)
            return True
        result = self._on_event(event)
        if asyncio.iscoroutine(result):
            await result
        return False
