"""The market-data gateway's and the exchange REST clients' metric families (read by runtime/metrics.py at
scrape time from counters the clients keep anyway: nothing is added to a request).

Exchange REST weight: Binance bans an IP that ignores its request-weight limit (429, then 418). Both REST
clients read `X-MBX-USED-WEIGHT-1M` from every answer and the limit from exchangeInfo's `rateLimits`; the
gateway's market client (klines, backfill) and the trader's signed client (orders, account) are labelled by
service, since in per-service mode they are separate processes (Binance counts per IP: on one host the two
report the same shared figure).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

NS = "roottrading"
RATE_LIMIT_CODES = ("429", "418")


def gateway_families(gw: Any) -> Iterator[Metric]:
    """Connection state, reconnects, frames, backfilled candles and gaps of the market-data stream."""
    d = gw.diagnostic()
    conn = d.get("connection") or {}
    state = str(conn.get("state", "idle"))
    g = GaugeMetricFamily(f"{NS}_gateway_connected", "1 while the market-data stream is connected", labels=["service"])
    g.add_metric(["gateway"], 1.0 if state == "connected" else 0.0)
    yield g
    c = CounterMetricFamily(f"{NS}_gateway_reconnects", "Market-data stream reconnections", labels=["service"])
    c.add_metric(["gateway"], float(conn.get("reconnects", 0) or 0))
    yield c
    frames = CounterMetricFamily(f"{NS}_gateway_frames", "Stream frames received", labels=["service", "stream"])
    rate = GaugeMetricFamily(
        f"{NS}_gateway_frames_per_second", "Stream frames per second (recent)", labels=["service", "stream"]
    )
    per = {
        "backfilled": CounterMetricFamily(
            f"{NS}_gateway_backfilled_candles", "Candles fetched over REST to fill gaps", labels=["service", "symbol"]
        ),
        "gaps_filled": CounterMetricFamily(
            f"{NS}_gateway_gaps", "Gaps found in the candle sequence (then filled)", labels=["service", "symbol"]
        ),
        "published": CounterMetricFamily(
            f"{NS}_gateway_published_candles", "Closed candles published", labels=["service", "symbol"]
        ),
    }
    for sym, s in d.get("symbols", {}).items():
        for key, fam in per.items():
            fam.add_metric(["gateway", sym], float(s.get(key, 0) or 0))
        for stream, st in s.get("streams", {}).items():
            frames.add_metric(["gateway", stream], float(st.get("messages", 0) or 0))
            rate.add_metric(["gateway", stream], float(st.get("messages_per_s", 0) or 0))
    yield frames
    yield rate
    yield from per.values()


def rest_clients(services: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(service, REST client) pairs that talk to Binance: the gateway's market client, the trader's signed
    client when the trader's exchange is Binance (the demo's simulator has none)."""
    out: list[tuple[str, Any]] = []
    gw = services.get("gateway")
    if gw is not None and getattr(gw, "rest", None) is not None:
        out.append(("gateway", gw.rest))
    tr = services.get("trader")
    rest = getattr(getattr(tr, "exchange", None), "rest", None)
    if rest is not None and hasattr(rest, "weight_in_use"):
        out.append(("trader", rest))
    return out


def exchange_rest_families(services: Mapping[str, Any]) -> Iterator[Metric]:
    """Request weight used vs the limit, and the 429/418 answers, per REST client. One family each, every
    client a series in it (a family must appear once per scrape)."""
    clients = rest_clients(services)
    if not clients:
        return
    used = GaugeMetricFamily(
        f"{NS}_exchange_rest_weight_used",
        "Request weight used in the current minute (X-MBX-USED-WEIGHT-1M of the last answer; 0 once the minute "
        "has turned without a request)",
        labels=["service"],
    )
    limit = GaugeMetricFamily(
        f"{NS}_exchange_rest_weight_limit",
        "Request weight limit per minute (exchangeInfo rateLimits REQUEST_WEIGHT)",
        labels=["service"],
    )
    codes = CounterMetricFamily(
        f"{NS}_exchange_rest_rate_limited", "429 (slow down) and 418 (banned) answers", labels=["service", "code"]
    )
    for service, rest in clients:
        used.add_metric([service], float(rest.weight_in_use()))
        limit.add_metric([service], float(rest.weight_limit))
        for code in RATE_LIMIT_CODES:
            codes.add_metric([service, code], float(rest.stats.get(code, 0)))
    yield used
    yield limit
    yield codes
