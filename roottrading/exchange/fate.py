"""Recovering the fate of an order whose placement ended without an answer (timeout, 5xx, lost connection).

Why one function: every adapter (native Binance, ccxt) must answer the same question the same way after an
unknown outcome: ask for the order by its client id a few times, with a growing pause, because it may still
be in flight inside the exchange. "Not found" on every attempt means the exchange never accepted it
(`OrderNotFound`, safe to send again); any other failure leaves the fate unknown (`OrderFateUnknown`: the
trader's reconciliation settles it later). Two copies of this loop would drift apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping

import structlog

from roottrading.domain import Order
from roottrading.exchange.errors import ExchangeError, NoSuchOrder, OrderFateUnknown, OrderNotFound

log = structlog.get_logger(__name__)


async def recover_order_fate(
    query: Callable[[], Awaitable[Order]],
    *,
    symbol: str,
    client_order_id: str,
    cause: str,
    attempts: int,
    delay_s: float,
    stats: MutableMapping[str, int],
    source: str,
) -> Order:
    """The order as the exchange has it, queried with `query` up to `attempts` times (pause delay_s x attempt).

    Counts fate_unknown / recovered / not_found in `stats`; `source` names the adapter in the log lines."""
    stats["fate_unknown"] += 1
    log.warning(f"{source}.order_fate_unknown", symbol=symbol, client_order_id=client_order_id, cause=cause)
    last_error = cause
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(delay_s * attempt)
        try:
            order = await query()
        except NoSuchOrder:
            last_error = "not found"
            continue  # it may still be in flight inside the exchange: ask again
        except (ExchangeError, OSError) as exc:
            last_error = f"query failed: {type(exc).__name__}"
            continue
        stats["recovered"] += 1
        log.info(f"{source}.order_fate_recovered", client_order_id=client_order_id, status=order.status.value)
        return order
    if last_error == "not found":
        stats["not_found"] += 1
        raise OrderNotFound(symbol, client_order_id, f"{cause}; the exchange does not have it")
    raise OrderFateUnknown(symbol, client_order_id, f"{cause}; {last_error}")
