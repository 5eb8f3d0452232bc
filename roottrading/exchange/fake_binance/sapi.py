"""The few wallet and margin endpoints (`/sapi/...`) that clients read while loading markets.

Why: ccxt's Binance client, with its default options, reads the coin list (`/sapi/v1/capital/config/getall`)
when it has API keys, and the cross and isolated margin pairs (`/sapi/v1/margin/allPairs`,
`/sapi/v1/margin/isolated/allPairs`) while loading markets; a 404 on any of them fails `load_markets`.
What they answer, shaped as Binance documents it:
- capital/config/getall: one entry per asset the simulator knows (the served symbols' base and quote assets
  and any funded asset), with the account's balance; one network per coin, named after the coin. The
  simulator has no deposits or withdrawals, so both are reported disabled, with the reason Binance's
  `depositDesc`/`withdrawDesc` carry; `trading` is true.
- margin/allPairs and margin/isolated/allPairs: empty lists (the simulator has no margin trading).
Request weights are not charged: Binance counts /sapi weight apart from the spot API's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from roottrading.exchange.fake_binance.account import TradingAccount

Handler = Callable[[Request, dict[str, str]], Awaitable[Any]]
Endpoint = Callable[..., Callable[[Request], Awaitable[Response]]]

FIAT = frozenset({"EUR", "USD", "GBP", "TRY", "BRL", "AUD", "JPY", "RUB", "UAH", "ZAR", "PLN", "ARS", "MXN"})
NO_TRANSFERS = "The simulated exchange has no deposits or withdrawals."


def plain(x: Decimal) -> str:
    """Binance's wallet rendering: no trailing zeros ("1", "0.5", "34941.1")."""
    s = format(x.normalize(), "f")
    return "0" if s in ("-0", "0") else s


def coin_info(coin: str, free: Decimal, locked: Decimal) -> dict[str, Any]:
    """One entry of /sapi/v1/capital/config/getall."""
    network = {
        "network": coin,
        "coin": coin,
        "withdrawIntegerMultiple": "0.00000001",
        "isDefault": True,
        "depositEnable": False,
        "withdrawEnable": False,
        "depositDesc": NO_TRANSFERS,
        "withdrawDesc": NO_TRANSFERS,
        "specialTips": "",
        "specialWithdrawTips": "",
        "name": coin,
        "resetAddressStatus": False,
        "addressRegex": "",
        "memoRegex": "",
        "withdrawFee": "0",
        "withdrawMin": "0",
        "withdrawMax": "0",
        "withdrawInternalMin": "0",
        "depositDust": "0.00000001",
        "minConfirm": 1,
        "unLockConfirm": 0,
        "sameAddress": False,
        "withdrawTag": False,
        "estimatedArrivalTime": 0,
        "busy": False,
        "contractAddressUrl": "",
        "contractAddress": "",
    }
    return {
        "coin": coin,
        "depositAllEnable": False,
        "withdrawAllEnable": False,
        "name": coin,
        "free": plain(free),
        "locked": plain(locked),
        "freeze": "0",
        "withdrawing": "0",
        "ipoing": "0",
        "ipoable": "0",
        "storage": "0",
        "isLegalMoney": coin in FIAT,
        "trading": True,
        "networkList": [network],
    }


def sapi_routes(acct: TradingAccount, endpoint: Endpoint) -> list[Route]:
    """`endpoint(handler, security=...)` is the trading side's wrapper (API key, signature, Binance errors)."""
    engine = acct.engine

    async def all_coins(request: Request, p: dict[str, str]) -> Any:
        balances = engine.balances()
        coins = {a for r in engine.rules.values() for a in (r.base_asset, r.quote_asset)} | set(balances)
        zero = Decimal(0)
        return [
            coin_info(c, balances[c].free if c in balances else zero, balances[c].locked if c in balances else zero)
            for c in sorted(coins)
        ]

    async def no_pairs(request: Request, p: dict[str, str]) -> Any:
        return []

    return [
        Route("/sapi/v1/capital/config/getall", endpoint(all_coins), methods=["GET"]),
        Route("/sapi/v1/margin/allPairs", endpoint(no_pairs, security="MARKET_DATA"), methods=["GET"]),
        Route("/sapi/v1/margin/isolated/allPairs", endpoint(no_pairs), methods=["GET"]),
    ]
