"""ccxt's rate limiter follows the weight budget the exchange publishes, as the native adapter does.

The bug (issue 16, the ccxt trader soak): ccxt's binance class throttles every request to real Binance's
6,000 weight/minute (rateLimit 50 ms per cost unit, GET /account and myTrades cost 4 = 200 ms each), whatever
the venue publishes. Behind the trader's account reads and the adapter's polling, order requests queued in
ccxt's throttler: the trader handled ~3-4 order requests/s where the native adapter, pacing on the limit in
exchangeInfo, handled them all. Here the simulator publishes 1,000,000/minute (as in the soak).
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

from roottrading.domain import OrderType, Side
from roottrading.exchange.ccxt.adapter import CcxtExchange
from tests.binance_trading.conftest import API_KEY, API_SECRET, Server, fake_binance  # noqa: F401 (fixture)

N = 20  # account reads and market orders, all at once: what a burst of trader requests does


async def burst(ex: Any, prefix: str) -> float:
    """Seconds to run N balance reads and N small market orders concurrently (after the rules are loaded)."""
    await ex.exchange_info()
    t0 = time.perf_counter()
    orders = [
        ex.place_order(
            symbol="BTCUSDT",
            side=Side.BUY,
            type=OrderType.MARKET,
            client_order_id=f"{prefix}{i}",
            quantity=Decimal("0.001"),
        )
        for i in range(N)
    ]
    await asyncio.gather(*orders, *(ex.balances() for _ in range(N)))
    return time.perf_counter() - t0


async def test_ccxt_throttle_follows_the_published_weight_limit(fake_binance) -> None:  # noqa: F811
    async with fake_binance(start_paused=True, weight_limit=1_000_000) as srv:
        native = srv.exchange()
        ex = CcxtExchange("binance", api_key=API_KEY, secret=API_SECRET, rest_url=srv.url)
        try:
            native_s = await burst(native, "nat")
            ccxt_s = await burst(ex, "cx")
            rate_limit_ms = ex.client.rateLimit
        finally:
            await ex.close()
            await native.close()
    print(f"\n{N} orders + {N} account reads at once: native {native_s:.3f}s, ccxt {ccxt_s:.3f}s")
    # before the fix ccxt's throttler alone took N * 200 ms (account) + N * 10 ms (orders) = 4.2 s
    assert ccxt_s < max(1.0, 6 * native_s), (native_s, ccxt_s)
    # ccxt's model of Binance is cost = weight / 5 at 50 ms per cost unit (6,000/minute): scaled to the
    # published 1,000,000/minute
    assert rate_limit_ms == 50 * 6_000 / 1_000_000


async def test_ccxt_throttle_keeps_binance_budget_when_the_venue_publishes_it(fake_binance) -> None:  # noqa: F811
    async with fake_binance(start_paused=True) as srv:  # the default: Binance's 6,000/minute
        ex = CcxtExchange("binance", api_key=API_KEY, secret=API_SECRET, rest_url=srv.url)
        try:
            await ex.exchange_info()
            assert ex.client.rateLimit == 50 and ex.client.enableRateLimit
        finally:
            await ex.close()
