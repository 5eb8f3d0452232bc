"""Binance Spot's WebSocket API (`/ws-api/v3`), the part a user-data client needs: subscribe to the account's
user-data events on the API connection itself, by signature, as ccxt.pro's binance class does for spot
(watch_orders / watch_my_trades / watch_balance).

Why beside the listenKey stream (`/ws/<listenKey>`, trading.py): Binance deprecated listen keys for spot in
favour of this; clients built on ccxt never open a listenKey stream, so without it they could only poll.

Requests and answers follow Binance's WebSocket API docs (user-data-stream requests):
  {"id": X, "method": "userDataStream.subscribe.signature", "params": {apiKey, timestamp, [recvWindow], signature}}
  -> {"id": X, "status": 200, "result": {"subscriptionId": 0}, "rateLimits": [...]}
  events -> {"subscriptionId": 0, "event": {"e": "executionReport" | "outboundAccountPosition", ...}}
  also userDataStream.unsubscribe ([subscriptionId]), session.subscriptions, ping; errors
  -> {"id": X, "status": 400|401, "error": {"code": -1022, "msg": "..."}}.
The signature covers every parameter but `signature`, sorted by name, as `k=v&...` (HMAC-SHA256, hex), and is
checked by the REST side's own code (auth.check_signed): key, timestamp and recvWindow rules are the same.
Dropped by the same fault as the listenKey streams (TradingAccount.drop_user_streams).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from roottrading.exchange.errors import BadApiKeyFormat, BinanceError, InvalidApiKey
from roottrading.exchange.fake_binance.auth import check_signed
from roottrading.exchange.fake_binance.hub import Connection
from roottrading.exchange.fake_binance.wsapi import run_connection

if TYPE_CHECKING:
    from roottrading.exchange.fake_binance.account import TradingAccount
    from roottrading.exchange.fake_binance.app import FakeBinanceState

log = structlog.get_logger(__name__)
USER_EVENTS = "@ws-api:user-data"  # the hub stream the account's user-data events are published on
_KEY_RE = re.compile(r"^[A-Za-z0-9]{1,128}$")
_RATE_LIMITS = [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000, "count": 2}]


class SubscriptionActive(BinanceError):
    code = -2035
    default_msg = "User Data Stream subscription already active."


class UnknownMethod(BinanceError):
    code = -1100
    default_msg = "Unknown method."


class Session:
    """One WebSocket API connection: its hub connection and its user-data subscriptions (id -> active)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.next_id = 0
        self.subscriptions: list[int] = []


def _signed_query(params: dict[str, Any]) -> tuple[dict[str, str], str]:
    """(params as strings, `k=v&...` sorted by name with the signature last): what auth.check_signed verifies."""
    flat = {k: str(v) for k, v in params.items()}
    body = "&".join(f"{k}={v}" for k, v in sorted(flat.items()) if k != "signature")
    return flat, body + (f"&signature={flat['signature']}" if "signature" in flat else "")


def subscribe_signature(session: Session, acct: TradingAccount, params: dict[str, Any]) -> dict[str, Any]:
    key = str(params.get("apiKey") or "")
    if not _KEY_RE.match(key):
        raise BadApiKeyFormat()
    if key != acct.api_key:
        raise InvalidApiKey()
    flat, query = _signed_query(params)
    check_signed(flat, query, "", acct)
    if session.subscriptions:  # one subscription per account per connection (Binance's rule)
        raise SubscriptionActive()
    sub_id = session.next_id
    session.next_id += 1
    session.subscriptions.append(sub_id)
    acct.start_drops()  # the drop fault covers these connections as it covers the listenKey streams
    return {"subscriptionId": sub_id}


def unsubscribe(session: Session, params: dict[str, Any]) -> dict[str, Any]:
    sub_id = params.get("subscriptionId")
    session.subscriptions = [] if sub_id is None else [s for s in session.subscriptions if s != int(sub_id)]
    return {}


async def _sender(ws: WebSocket, session: Session) -> None:
    """The account's events, each wrapped with the subscription id; closes when the account drops the stream."""
    conn = session.conn
    while True:
        _, payload = await conn.queue.get()
        if conn.overflowed:
            await ws.close(code=1008)
            return
        for sub_id in list(session.subscriptions):
            await ws.send_text(f'{{"subscriptionId":{sub_id},"event":{payload.decode()}}}')


async def _receiver(ws: WebSocket, session: Session, state: FakeBinanceState) -> None:
    acct: TradingAccount = state.trading  # type: ignore[attr-defined]
    while True:
        text = await ws.receive_text()
        try:
            req = msgspec.json.decode(text)
            rid, method, params = req.get("id"), req["method"], req.get("params") or {}
            if not isinstance(params, dict):
                raise TypeError
        except (msgspec.DecodeError, KeyError, TypeError, AttributeError):
            await ws.send_text('{"id":null,"status":400,"error":{"code":-1102,"msg":"Malformed request."}}')
            continue
        reply: dict[str, Any] = {"id": rid}
        try:
            if method == "userDataStream.subscribe.signature":
                result: Any = subscribe_signature(session, acct, params)
                state.stats["ws_api_user_subscriptions"] += 1
            elif method == "userDataStream.unsubscribe":
                result = unsubscribe(session, params)
            elif method == "session.subscriptions":
                result = [{"subscriptionId": s} for s in session.subscriptions]
            elif method == "ping":
                result = {}
            else:
                raise UnknownMethod(f"Unknown method '{method}'.")
            reply.update(status=200, result=result, rateLimits=_RATE_LIMITS)
        except (BinanceError, ValueError) as exc:
            err = exc if isinstance(exc, BinanceError) else UnknownMethod(str(exc))
            status = 401 if isinstance(err, (BadApiKeyFormat, InvalidApiKey)) else 400
            reply.update(status=status, error=err.to_body(), rateLimits=_RATE_LIMITS)
        await ws.send_text(msgspec.json.encode(reply).decode())


def ws_api_routes(state: FakeBinanceState) -> list[WebSocketRoute]:
    """`/ws-api/v3`: needs the trading extension's account (`state.trading`)."""

    async def serve(ws: WebSocket) -> None:
        await ws.accept()
        conn = state.hub.connect(False, state.config.ws_queue_size)
        state.hub.subscribe(conn, USER_EVENTS)
        state.stats["ws_api_connections"] += 1
        session = Session(conn)
        await run_connection(state, conn, _sender(ws, session), _receiver(ws, session, state))

    return [WebSocketRoute("/ws-api/v3", serve)]
