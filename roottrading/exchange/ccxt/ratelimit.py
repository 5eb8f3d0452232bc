"""ccxt's request throttle sized to the weight budget the exchange itself publishes.

Why: ccxt's binance class throttles to a fixed model of real Binance (6,000 request weight per minute: a cost
unit is 5 weight, `rateLimit` 50 ms per cost unit), whatever the venue says. Against a venue that publishes
another budget (a simulator, a Binance-compatible exchange, a future limit change) ccxt either queues requests
that would be allowed (the ccxt trader soak: order requests waited behind 200 ms account reads, ~3-4 handled
per second instead of ~17) or overruns a smaller budget. The native adapter paces on exchangeInfo's limit;
this does the same for ccxt: rateLimit is rescaled so ccxt's own cost table spends exactly the published
budget. Exchanges without Binance's exchangeInfo keep ccxt's defaults.
"""

from __future__ import annotations

from typing import Any

CCXT_BINANCE_WEIGHT_PER_MINUTE = 6_000  # the budget ccxt's binance cost table and rateLimit model
_INTERVAL_S = {"SECOND": 1, "MINUTE": 60, "HOUR": 3_600, "DAY": 86_400}


def weight_per_minute(exchange_info: dict[str, Any]) -> float | None:
    """The tightest REQUEST_WEIGHT limit in a Binance exchangeInfo body, per minute; None when absent."""
    rates = []
    for lim in exchange_info.get("rateLimits") or []:
        if lim.get("rateLimitType") != "REQUEST_WEIGHT" or lim.get("interval") not in _INTERVAL_S:
            continue
        window_s = _INTERVAL_S[lim["interval"]] * int(lim.get("intervalNum") or 1)
        limit = float(lim.get("limit") or 0)
        if limit > 0:
            rates.append(limit * 60 / window_s)
    return min(rates) if rates else None


def scaled_rate_limit(default_ms: float, published_per_minute: float) -> float:
    """ccxt's rateLimit (ms per cost unit) that spends `published_per_minute` with ccxt's binance cost table."""
    return default_ms * CCXT_BINANCE_WEIGHT_PER_MINUTE / published_per_minute


async def fit_to_published_limit(client: Any, default_ms: float, market_id: str) -> float | None:
    """Read the published weight budget (exchangeInfo of one symbol: weight 2) and rescale the client's
    throttle to it. Returns the budget per minute, or None when the exchange has no such endpoint or limit
    (ccxt's default stays). A failed read raises ccxt's error: the caller retries as for any read."""
    endpoint = getattr(client, "publicGetExchangeInfo", None)
    if endpoint is None:
        return None
    published = weight_per_minute(await endpoint({"symbol": market_id}))
    if published is None:
        return None
    client.rateLimit = scaled_rate_limit(default_ms, published)
    throttler = getattr(client, "throttler", None)
    if throttler is not None:  # ccxt's throttler copied the rate when the client was built (tokens per ms)
        cfg = throttler.config
        cfg["refillRate"] = 1 / client.rateLimit
        cfg["rateLimit"] = client.rateLimit
        if cfg.get("algorithm") != "leakyBucket":
            cfg["maxWeight"] = cfg["windowSize"] / client.rateLimit
    return published
