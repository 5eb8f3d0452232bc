"""Trading side of the fake Binance server: Binance Spot's signed endpoints over a SimEngine.

Install it as an extension: `build_app(config, extensions=[trading_extension])` (the CLI does). Endpoints:
/api/v3/order (POST/GET/DELETE), /api/v3/order/test, /api/v3/order/oco, /api/v3/openOrders (GET/DELETE),
/api/v3/account, /api/v3/myTrades, /api/v3/allOrders, /api/v3/userDataStream (POST/PUT/DELETE), the wallet and
margin reads of fake_binance/sapi.py, and the user-data WebSocket `/ws/<listenKey>` (served by the market side's
WebSocket code through a hub validator), and the WebSocket API's user-data subscription `/ws-api/v3`
(wsapi_user.py).
Response shapes follow Binance's docs (ACK/RESULT/FULL; MARKET and LIMIT default to FULL, others to ACK).
Faults (config): accept-then-timeout, accept-then-5xx, -1021, -2010, plus the market side's 429/418/5xx.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, overload

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from roottrading.domain import Order, OrderType, Side, TimeInForce
from roottrading.exchange.errors import (
    BadPrecision,
    BinanceError,
    CancelRejected,
    IllegalParameter,
    InsufficientBalance,
    InvalidOrderType,
    InvalidSide,
    InvalidSymbol,
    InvalidTimeInForce,
    InvalidTimestamp,
    MandatoryParamMissing,
    NoSuchOrder,
    TooManyOrders,
)
from roottrading.exchange.fake_binance.account import TradingAccount, f8, gen_key
from roottrading.exchange.fake_binance.app import FakeBinanceState
from roottrading.exchange.fake_binance.auth import check_api_key, check_signed, read_params
from roottrading.exchange.fake_binance.limits import WeightSpec
from roottrading.exchange.fake_binance.sapi import sapi_routes
from roottrading.exchange.fake_binance.wsapi_user import ws_api_routes

_LIMIT_TYPES = (OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)
Params = dict[str, str]


class InvalidParameterData(BinanceError):
    code = -1130
    default_msg = "Data sent for parameter 'limit' is not valid."


class ListenKeyNotFound(BinanceError):
    code = -1125
    default_msg = "This listenKey does not exist."


def _weight_order(q: dict[str, str]) -> int:
    return 4 if ("origClientOrderId" in q or "orderId" in q) and "side" not in q else 1


ROUTE_WEIGHTS: dict[str, WeightSpec] = {
    "/api/v3/order": _weight_order,
    "/api/v3/order/test": 1,
    "/api/v3/order/oco": 1,
    "/api/v3/openOrders": lambda q: 6 if "symbol" in q else 80,
    "/api/v3/account": 20,
    "/api/v3/myTrades": 20,
    "/api/v3/allOrders": 20,
    "/api/v3/userDataStream": 2,
}


# ---------------------------------------------------------------------- parameters
def req(p: Params, name: str) -> str:
    v = p.get(name)
    if not v:
        raise MandatoryParamMissing.for_param(name)
    return v


def dec(p: Params, name: str) -> Decimal | None:
    v = p.get(name)
    if v is None or v == "":
        return None
    try:
        d = Decimal(v)
    except InvalidOperation:
        raise IllegalParameter(
            f"Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'."
        ) from None
    if not d.is_finite() or d < 0:
        raise IllegalParameter(f"Illegal characters found in parameter '{name}'.")
    if d.as_tuple().exponent < -8:  # type: ignore[operator]
        raise BadPrecision(f"Parameter '{name}' has too much precision.")
    return d


def integer(p: Params, name: str) -> int | None:
    v = p.get(name)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise IllegalParameter(f"Illegal characters found in parameter '{name}'.") from None


def enum(cls: type, value: str, err: type[BinanceError]) -> Any:
    try:
        return cls(value)
    except ValueError:
        raise err() from None


# ---------------------------------------------------------------------- the extension
def trading_extension(state: FakeBinanceState) -> list[BaseRoute]:
    """Create the account (state.trading), register weights, return the trading routes."""
    acct = TradingAccount(state)
    state.trading = acct  # type: ignore[attr-defined]  # the trading side's state, for the CLI and tests
    state.limiter.route_weights.update(ROUTE_WEIGHTS)
    engine = acct.engine
    cfg = state.config
    rng = state.rng

    @overload
    def symbol_of(p: Params, required: Literal[True] = ...) -> str: ...
    @overload
    def symbol_of(p: Params, required: bool) -> str | None: ...

    def symbol_of(p: Params, required: bool = True) -> str | None:
        s = p.get("symbol")
        if not s:
            if required:
                raise MandatoryParamMissing.for_param("symbol")
            return None
        s = s.upper()
        if s not in engine.rules:
            raise InvalidSymbol()
        return s

    def find(p: Params, symbol: str) -> Order:
        oid, cid = integer(p, "orderId"), p.get("origClientOrderId")
        if oid is None and not cid:
            raise MandatoryParamMissing(
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
            )
        if oid is not None:
            sim = engine._orders.get(oid)
            if sim is None or sim.symbol != symbol or (cid and sim.client_order_id != cid):
                raise NoSuchOrder()
            return sim.to_order()
        return engine.get_order(symbol, cid)  # type: ignore[arg-type]

    def endpoint(
        handler: Callable[[Request, Params], Awaitable[Any]], security: str = "SIGNED"
    ) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            try:
                params, raw_q, raw_b = await read_params(request)
                check_api_key(request, acct)
                if security == "SIGNED":
                    check_signed(params, raw_q, raw_b, acct)
                    if rng.random() < cfg.timestamp_error_prob:
                        state.stats["fault_-1021"] += 1
                        raise InvalidTimestamp()
                result = await handler(request, params)
            except BinanceError as exc:
                return JSONResponse(exc.to_body(), status_code=exc.http_status)
            if isinstance(result, Response):
                return result
            return JSONResponse(result)

        return run

    # ------------------------------------------------------------------ orders
    def parse_new_order(p: Params) -> dict[str, Any]:
        symbol = symbol_of(p)
        side = enum(Side, req(p, "side"), InvalidSide)
        otype = enum(OrderType, req(p, "type"), InvalidOrderType)
        tif_raw = p.get("timeInForce")
        if otype in _LIMIT_TYPES and not tif_raw:
            raise MandatoryParamMissing.for_param("timeInForce")
        tif = enum(TimeInForce, tif_raw, InvalidTimeInForce) if tif_raw else TimeInForce.GTC
        return {
            "symbol": symbol,
            "side": side,
            "type": otype,
            "time_in_force": tif,
            "quantity": dec(p, "quantity"),
            "quote_quantity": dec(p, "quoteOrderQty"),
            "price": dec(p, "price"),
            "stop_price": dec(p, "stopPrice"),
            "client_order_id": p.get("newClientOrderId") or gen_key(22),
        }

    async def new_order(request: Request, p: Params) -> Any:
        o = parse_new_order(p)
        resp_type = p.get("newOrderRespType") or ("FULL" if o["type"] in (OrderType.MARKET, OrderType.LIMIT) else "ACK")
        if resp_type not in ("ACK", "RESULT", "FULL"):
            raise IllegalParameter("Invalid newOrderRespType.")
        counts = acct.count_order()
        if counts is None:
            raise TooManyOrders(f"Too many new orders; current limit is {cfg.order_limit_10s} orders per 10 SECOND.")
        if rng.random() < cfg.insufficient_balance_prob:
            state.stats["fault_-2010"] += 1
            raise InsufficientBalance()
        mark = engine._next_trade_id
        order = engine.place_order(
            o["symbol"],
            o["side"],
            o["type"],
            o["client_order_id"],
            o["quantity"],
            o["quote_quantity"],
            o["price"],
            o["stop_price"],
            o["time_in_force"],
        )
        acct.stats["orders"] += 1
        acct.save()
        headers = {"X-MBX-ORDER-COUNT-10S": str(counts[0]), "X-MBX-ORDER-COUNT-1D": str(counts[1])}
        r = rng.random()
        if r < cfg.order_5xx_prob:
            state.stats["fault_order_5xx"] += 1
            return JSONResponse(
                {"code": -1000, "msg": "An unknown error occurred while processing the request."},
                status_code=500,
                headers=headers,
            )
        if r < cfg.order_5xx_prob + cfg.order_timeout_prob:
            state.stats["fault_order_timeout"] += 1
            await asyncio.sleep(cfg.order_timeout_s)
        if resp_type == "ACK":
            body: dict[str, Any] = {
                "symbol": order.symbol,
                "orderId": int(order.exchange_order_id or 0),
                "orderListId": -1,
                "clientOrderId": order.client_order_id,
                "transactTime": order.created_at,
            }
        else:
            body = acct.order_json(order, "result")
            if resp_type == "FULL":
                oid = int(order.exchange_order_id or 0)
                body["fills"] = [
                    {
                        "price": f8(t[5]),
                        "qty": f8(t[6]),
                        "commission": f8(t[8]),
                        "commissionAsset": t[9],
                        "tradeId": t[0],
                    }
                    for t in engine._trades[order.symbol]
                    if t[0] > mark and t[1] == oid
                ]
        return JSONResponse(body, headers=headers)

    async def test_order(request: Request, p: Params) -> Any:
        o = parse_new_order(p)
        rules = engine.rules[o["symbol"]]
        if o["type"] is OrderType.MARKET:
            if o["quantity"] is None and o["quote_quantity"] is None:
                raise MandatoryParamMissing(
                    "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"
                )
            if o["quantity"] is not None:
                rules.check(o["side"], o["type"], o["quantity"], last_price=engine.last_price(o["symbol"]))
        else:
            if o["quantity"] is None:
                raise MandatoryParamMissing.for_param("quantity")
            if o["price"] is None:
                raise MandatoryParamMissing.for_param("price")
            rules.check(
                o["side"], o["type"], o["quantity"], o["price"], o["stop_price"], engine.last_price(o["symbol"])
            )
        if p.get("computeCommissionRates") == "true":
            return {
                "standardCommissionForOrder": {
                    "maker": f8(Decimal(cfg.maker_fee)),
                    "taker": f8(Decimal(cfg.taker_fee)),
                },
                "taxCommissionForOrder": {"maker": f8(None), "taker": f8(None)},
                "discount": {
                    "enabledForAccount": False,
                    "enabledForSymbol": False,
                    "discountAsset": "BNB",
                    "discount": f8(None),
                },
            }
        return {}

    async def order(request: Request, p: Params) -> Any:
        if request.method == "POST":
            return await new_order(request, p)
        symbol = symbol_of(p)
        assert symbol is not None
        if request.method == "GET":
            return acct.order_json(find(p, symbol), "query")
        try:  # DELETE
            target = find(p, symbol)
        except NoSuchOrder:
            raise CancelRejected() from None
        oid = int(target.exchange_order_id or 0)
        cancel_id = p.get("newClientOrderId") or gen_key(22)
        acct.cancel_ids[oid] = cancel_id
        try:
            canceled = engine.cancel_order(symbol, target.client_order_id)
        finally:
            acct.cancel_ids.pop(oid, None)
        acct.save()
        body = acct.order_json(canceled, "cancel")
        body["clientOrderId"] = cancel_id
        return body

    async def oco(request: Request, p: Params) -> Any:
        symbol = symbol_of(p)
        side = enum(Side, req(p, "side"), InvalidSide)
        qty, price, stop, stop_limit = (
            dec(p, "quantity"),
            dec(p, "price"),
            dec(p, "stopPrice"),
            dec(p, "stopLimitPrice"),
        )
        for name, v in (("quantity", qty), ("price", price), ("stopPrice", stop), ("stopLimitPrice", stop_limit)):
            if v is None:
                raise MandatoryParamMissing.for_param(name)
        assert qty is not None and price is not None and stop is not None and stop_limit is not None  # raised above
        if acct.count_order() is None:
            raise TooManyOrders()
        olist = engine.place_oco(
            symbol,
            side,
            qty,
            price,
            stop,
            stop_limit,
            p.get("listClientOrderId") or gen_key(22),
            p.get("limitClientOrderId") or gen_key(22),
            p.get("stopClientOrderId") or gen_key(22),
        )
        acct.save()
        return {
            "orderListId": olist.order_list_id,
            "contingencyType": "OCO",
            "listStatusType": "EXEC_STARTED" if olist.list_status == "EXEC_STARTED" else "ALL_DONE",
            "listOrderStatus": "EXECUTING" if olist.list_status == "EXEC_STARTED" else "ALL_DONE",
            "listClientOrderId": olist.list_client_order_id,
            "transactionTime": olist.transaction_time,
            "symbol": symbol,
            "orders": [
                {"symbol": symbol, "orderId": int(o.exchange_order_id or 0), "clientOrderId": o.client_order_id}
                for o in olist.orders
            ],
            "orderReports": [acct.order_json(o, "result") for o in olist.orders],
        }

    async def open_orders(request: Request, p: Params) -> Any:
        if request.method == "GET":
            symbol = symbol_of(p, required=False)
            return [acct.order_json(o, "query") for o in engine.open_orders(symbol)]
        symbol = symbol_of(p)
        out = []
        for o in engine.open_orders(symbol):
            oid = int(o.exchange_order_id or 0)
            cancel_id = gen_key(22)
            acct.cancel_ids[oid] = cancel_id
            body = acct.order_json(engine.cancel_order(symbol, o.client_order_id), "cancel")
            body["clientOrderId"] = cancel_id
            out.append(body)
        if not out:
            raise CancelRejected()
        acct.save()
        return out

    # ------------------------------------------------------------------ account
    async def account(request: Request, p: Params) -> Any:
        omit = p.get("omitZeroBalances") == "true"
        bals = [
            {"asset": b.asset, "free": f8(b.free), "locked": f8(b.locked)}
            for b in engine.balances().values()
            if not (omit and b.free == 0 and b.locked == 0)
        ]
        maker, taker = Decimal(cfg.maker_fee), Decimal(cfg.taker_fee)
        return {
            "makerCommission": int(maker * 10_000),
            "takerCommission": int(taker * 10_000),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": f8(maker), "taker": f8(taker), "buyer": f8(None), "seller": f8(None)},
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": engine.now,
            "accountType": "SPOT",
            "balances": bals,
            "permissions": ["SPOT"],
            "uid": 354937868,
        }

    def _limit(p: Params, default: int = 500) -> int:
        lim = integer(p, "limit") or default
        if not 1 <= lim <= 1000:
            raise InvalidParameterData()
        return lim

    async def my_trades(request: Request, p: Params) -> Any:
        symbol = symbol_of(p)
        oid, start, end, from_id = (integer(p, n) for n in ("orderId", "startTime", "endTime", "fromId"))
        limit = _limit(p)
        rows = [
            t
            for t in engine._trades[symbol]
            if (oid is None or t[1] == oid)
            and (start is None or t[10] >= start)
            and (end is None or t[10] <= end)
            and (from_id is None or t[0] >= from_id)
        ]
        rows = rows[:limit] if (from_id is not None or start is not None) else rows[-limit:]
        return [acct.trade_json(t) for t in rows]

    async def all_orders(request: Request, p: Params) -> Any:
        symbol = symbol_of(p)
        oid, start, end = (integer(p, n) for n in ("orderId", "startTime", "endTime"))
        limit = _limit(p)
        rows = [
            o
            for o in engine._orders.values()
            if o.symbol == symbol
            and (oid is None or o.order_id >= oid)
            and (start is None or o.created_at >= start)
            and (end is None or o.created_at <= end)
        ]
        rows = rows[:limit] if (oid is not None or start is not None) else rows[-limit:]
        return [acct.order_json(o.to_order(), "query") for o in rows]

    async def user_stream(request: Request, p: Params) -> Any:
        if request.method == "POST":
            return {"listenKey": acct.create_listen_key()}
        key = req(p, "listenKey")
        ok = acct.keepalive(key) if request.method == "PUT" else acct.close_listen_key(key)
        if not ok:
            raise ListenKeyNotFound()
        return {}

    return [
        Route("/api/v3/order", endpoint(order), methods=["POST", "GET", "DELETE"]),
        Route("/api/v3/order/test", endpoint(test_order), methods=["POST"]),
        Route("/api/v3/order/oco", endpoint(oco), methods=["POST"]),
        Route("/api/v3/openOrders", endpoint(open_orders), methods=["GET", "DELETE"]),
        Route("/api/v3/account", endpoint(account), methods=["GET"]),
        Route("/api/v3/myTrades", endpoint(my_trades), methods=["GET"]),
        Route("/api/v3/allOrders", endpoint(all_orders), methods=["GET"]),
        Route(
            "/api/v3/userDataStream", endpoint(user_stream, security="USER_STREAM"), methods=["POST", "PUT", "DELETE"]
        ),
        *sapi_routes(acct, endpoint),
        *ws_api_routes(state),
    ]
