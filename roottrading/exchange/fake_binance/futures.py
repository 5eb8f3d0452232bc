"""USD-M (/fapi/v1/exchangeInfo) and COIN-M (/dapi/v1/exchangeInfo) futures exchange information: no symbols.

Why: the simulator trades spot only, yet clients load futures markets too. ccxt's Binance client, with its
default options (`fetchMarkets.types = ['spot', 'linear', 'inverse']`), asks both futures hosts for their
exchangeInfo while loading markets and fails the whole load if either is missing. Answering with Binance's
documented shape and an empty `symbols` list says the truth ("no futures markets here") and lets a client
keep its defaults; pointing a client's fapi/dapi URLs at this server is all it takes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from roottrading.exchange.fake_binance.app import FakeBinanceState


def _limit(kind: str, interval: str, num: int, limit: int) -> dict[str, str | int]:
    return {"rateLimitType": kind, "interval": interval, "intervalNum": num, "limit": limit}


def futures_routes(state: FakeBinanceState) -> list[Route]:
    market = state.market

    async def usdm_info(_: Request) -> Response:
        return JSONResponse(
            {
                "timezone": "UTC",
                "serverTime": market.now_ms,
                "futuresType": "U_MARGINED",
                "rateLimits": [
                    _limit("REQUEST_WEIGHT", "MINUTE", 1, 2400),
                    _limit("ORDERS", "MINUTE", 1, 1200),
                    _limit("ORDERS", "SECOND", 10, 300),
                ],
                "exchangeFilters": [],
                "assets": [],
                "symbols": [],
            }
        )

    async def coinm_info(_: Request) -> Response:
        return JSONResponse(
            {
                "timezone": "UTC",
                "serverTime": market.now_ms,
                "rateLimits": [_limit("REQUEST_WEIGHT", "MINUTE", 1, 2400), _limit("ORDERS", "MINUTE", 1, 1200)],
                "exchangeFilters": [],
                "symbols": [],
            }
        )

    return [Route("/fapi/v1/exchangeInfo", usdm_info), Route("/dapi/v1/exchangeInfo", coinm_info)]
