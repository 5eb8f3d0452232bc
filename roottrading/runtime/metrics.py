"""Prometheus metrics of a Host: `GET /metrics` (runtime/http.py), one registry per Host.

Why this shape: the services already count what matters (trader `core.stats`, coordinator `counts`, risk
`checks`/`refused_by_rule`, the gateway's `diagnostic()`, the bus's `BusStats`). A custom collector reads them
when Prometheus scrapes, so the hot path does no new work for counters. Only what nothing records yet is
measured where it happens, as cheaply as possible:
- handler durations: the Host wraps each subscription's handler (`Metrics.wrap`): two `perf_counter()` calls
  and a bucket increment per message (`FastHistogram`: no lock, the event loop is the only writer);
- pipeline latencies: `Metrics.on_publish` sees what a service publishes through `ctx.publish` and pairs it,
  by id, with the envelope time of the message that caused it (noted when it was consumed):
  candle close -> signal (signal publish time - `Signal.time`, the candle's close), signal -> decision (the
  coordinator's handler end - the signal's publish time, accepted or refused), decision -> order sent (the
  trader's `NEW` order update - the order request's publish time), order sent -> fill (the fill's exchange
  time - the `NEW` update's time). Times are the platform clock's (ms; wall time live, the replayed market
  clock in the demo), so each stage works the same when the services run in separate processes.
Anything that needs I/O (service health, pockets, PnL, the bus backlog) is read in `refresh()`, awaited by the
route just before the registry is rendered.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from roottrading import ids
from roottrading import messages as m
from roottrading.bus.base import Handler
from roottrading.runtime.metrics_exchange import NS, exchange_rest_families, gateway_families

if TYPE_CHECKING:
    from roottrading.runtime.host import Host

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# handler durations: 50 us .. 5 s; pipeline stages: 1 ms .. 60 s (ms clock)
HANDLER_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
STAGES = ("candle_to_signal", "signal_to_decision", "decision_to_order_sent", "order_sent_to_fill")
PENDING_MAX = 10_000  # ids waiting for their next stage; the oldest are forgotten past this


class FastHistogram:
    """A fixed-bucket histogram for one thread (the event loop): `observe` is a bisect and two additions.
    prometheus_client's Histogram takes a lock per observation; here the collector renders it at scrape."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last slot is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, v: float) -> None:
        self.counts[bisect_left(self.bounds, v)] += 1
        self.sum += v
        self.count += 1

    def buckets(self) -> list[tuple[str, float]]:
        out, acc = [], 0
        for bound, n in zip((*map(_le, self.bounds), "+Inf"), self.counts, strict=True):
            acc += n
            out.append((bound, float(acc)))
        return out


def _le(b: float) -> str:
    return repr(float(b))


class _HandlerStats:
    __slots__ = ("delivered", "duration", "failures")

    def __init__(self) -> None:
        self.delivered = 0
        self.failures = 0
        self.duration = FastHistogram(HANDLER_BUCKETS)


class _Bounded(OrderedDict[str, int]):
    """id -> time (ms), forgetting the oldest past PENDING_MAX: a stage that never comes costs nothing forever."""

    def put(self, key: str, value: int) -> None:
        self[key] = value
        if len(self) > PENDING_MAX:
            self.popitem(last=False)


class Metrics:
    """Everything `/metrics` shows for one Host."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.label = "all" if len(host.services) != 1 else next(iter(host.services))
        self.handlers: dict[tuple[str, str, str], _HandlerStats] = {}
        self.stages = {s: FastHistogram(STAGE_BUCKETS) for s in STAGES}
        self.signal_ts = _Bounded()  # signal id -> its publish time (coordinator side)
        self.request_ts = _Bounded()  # entry client order id -> its request's publish time (trader side)
        self.sent_ts = _Bounded()  # client order id -> when the exchange acknowledged it
        self.cycles_closed: dict[str, int] = {}
        self._closed_ids = _Bounded()
        self.snap: dict[str, Any] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.registry.register(_HostCollector(self))

    # --- hooks on the message path ----------------------------------------------------------------------
    def wrap(self, service: str, topic: str, group: str, handler: Handler) -> Handler:
        """The handler, timed and counted. A failure is counted and re-raised (the bus retries it)."""
        st = self.handlers.setdefault((service, topic, _group_label(group)), _HandlerStats())
        observe, perf = st.duration.observe, time.perf_counter
        pre = self._pre_hook(service, topic)
        post = self._post_hook(service, topic)

        async def timed(msg: m.Message) -> None:
            if pre is not None:
                pre(msg)
            t0 = perf()
            try:
                await handler(msg)
            except BaseException:
                st.failures += 1
                raise
            finally:
                observe(perf() - t0)
            st.delivered += 1
            if post is not None:
                post(msg)

        return timed

    def _pre_hook(self, service: str, topic: str) -> Any:
        if topic == m.ORDER_REQUESTS and service == "trader":
            put = self.request_ts.put

            def note_request(msg: m.Message) -> None:
                req = msg.payload
                put(ids.client_order_id(req.id, "entry"), msg.ts)

            return note_request
        return None

    def _post_hook(self, service: str, topic: str) -> Any:
        if topic == m.SIGNALS and service == "coordinator":
            hist, now = self.stages["signal_to_decision"], self.host.clock.now_ms

            def decided(msg: m.Message) -> None:
                hist.observe(max(0, now() - msg.ts) / 1000)

            return decided
        return None

    def on_publish(self, topic: str, payload: Any, ts: int) -> None:
        """Called by `Context.publish` before the bus: only a few topics do anything here."""
        if topic == m.SIGNALS:
            self.stages["candle_to_signal"].observe(max(0, ts - payload.time) / 1000)
        elif topic == m.ORDER_UPDATES:
            if payload.event == "NEW":
                coid = payload.order.client_order_id
                self.sent_ts.put(coid, ts)
                t = self.request_ts.pop(coid, None)
                if t is not None:
                    self.stages["decision_to_order_sent"].observe(max(0, ts - t) / 1000)
        elif topic == m.TRADE_EXECUTIONS:
            t = self.sent_ts.get(payload.client_order_id)
            if t is not None:
                self.stages["order_sent_to_fill"].observe(max(0, payload.time - t) / 1000)
        elif topic == m.CYCLE_UPDATES and payload.status.is_terminal and payload.id not in self._closed_ids:
            self._closed_ids.put(payload.id, ts)
            out = _outcome(payload)
            self.cycles_closed[out] = self.cycles_closed.get(out, 0) + 1

    # --- scrape -------------------------------------------------------------------------------------------
    async def refresh(self) -> None:
        """Read what needs I/O (each part bounded to 5 s; a failing part leaves its metrics out)."""
        host, snap = self.host, dict[str, Any]()
        health: dict[str, str] = {}
        for name, svc in host.services.items():
            try:
                health[name] = (await asyncio.wait_for(svc.health(), 5)).status
            except (TimeoutError, ConnectionError, OSError, RuntimeError):
                health[name] = "down"
        snap["health"] = health
        try:
            bus = await asyncio.wait_for(host.bus.health(), 5)
            snap["bus_up"] = 1.0 if bus.get("status") == "ok" else 0.0
        except (TimeoutError, ConnectionError, OSError):
            snap["bus_up"] = 0.0
        snap["backlog"] = await _backlog(host.bus)
        portfolio = host.services.get("portfolio")
        if portfolio is not None:
            with contextlib.suppress(TimeoutError, ConnectionError, OSError, RuntimeError):  # left out this scrape
                snap["pockets"] = await asyncio.wait_for(portfolio.ledger.pockets(), 5)  # type: ignore[attr-defined]
        pnl = host.services.get("pnl")
        if pnl is not None:
            with contextlib.suppress(TimeoutError, ConnectionError, OSError, RuntimeError):
                snap["pnl"] = await asyncio.wait_for(pnl.summary(), 5)  # type: ignore[attr-defined]
        self.snap = snap

    async def render(self) -> bytes:
        await self.refresh()
        return generate_latest(self.registry)


def _group_label(group: str) -> str:
    """A per-process group (`stream-140014279919248`: the stream service's own fan-out) is labelled by its
    service name: one label value per process would grow the series set at every restart."""
    head, _, tail = group.rpartition("-")
    return head if head and tail.isdigit() and len(tail) > 6 else group


def _outcome(c: Any) -> str:
    """win / loss / breakeven for a completed cycle with a PnL, else its terminal status (canceled, failed...)."""
    status = c.status.value.lower()
    if status != "completed" or c.profit_loss is None:
        return status
    return "win" if c.profit_loss > 0 else "loss" if c.profit_loss < 0 else "breakeven"


async def _backlog(bus: Any) -> dict[tuple[str, str], int]:
    """Messages waiting per (topic, group), from the bus's own `backlog()` (memory queues, Redis XINFO GROUPS,
    NATS consumer info): bounded to 5 s, left out of this scrape when the broker does not answer."""
    backlog = getattr(bus, "backlog", None)
    if backlog is None:
        return {}
    try:
        return dict(await asyncio.wait_for(backlog(), 5))
    except (TimeoutError, ConnectionError, OSError):
        return {}


def _f(x: Any) -> float | None:
    if x is None:
        return None
    if isinstance(x, str):
        x = x.rstrip("%")
    try:
        return float(Decimal(str(x)))
    except ArithmeticError:
        return None


class _HostCollector:
    """Builds every roottrading_* family at scrape time from the services' own counters."""

    def __init__(self, metrics: Metrics) -> None:
        self.mx = metrics

    def collect(self) -> Iterator[Metric]:
        mx = self.mx
        yield from self._bus()
        yield from self._pipeline()
        yield from self._services()
        svcs = mx.host.services
        if "gateway" in svcs:
            yield from gateway_families(svcs["gateway"])
        yield from exchange_rest_families(svcs)
        if "trader" in svcs:
            yield from _trader(svcs["trader"], mx)
        if "risk" in svcs:
            yield from _risk(svcs["risk"])
        if "coordinator" in svcs:
            yield from _coordinator(svcs["coordinator"])
        if "analyzer" in svcs:
            yield from _analyzer(svcs["analyzer"])
        yield from _money(mx)

    def _bus(self) -> Iterator[Metric]:
        mx, stats = self.mx, self.mx.host.bus.stats
        lab = mx.label
        up = GaugeMetricFamily(f"{NS}_bus_up", "1 when the message bus answers", labels=["service"])
        up.add_metric([lab], mx.snap.get("bus_up", 1.0))
        yield up
        pub = CounterMetricFamily(f"{NS}_bus_published", "Messages published, per topic", labels=["service", "topic"])
        for topic, n in list(stats.published_by_topic.items()):
            pub.add_metric([lab, topic], n)
        yield pub
        dl = CounterMetricFamily(
            f"{NS}_bus_dead_lettered", "Messages parked on deadletter.<topic>", labels=["service", "topic"]
        )
        # every consumed topic has a series from the start (0), so increase() sees the first dead letter
        dead = {topic: 0 for _, topic, _ in list(mx.handlers)} | stats.dead_lettered_by_topic
        for topic, n in dead.items():
            dl.add_metric([lab, topic], n)
        yield dl
        rt = CounterMetricFamily(f"{NS}_bus_retried", "Handler attempts retried (all topics)", labels=["service"])
        rt.add_metric([lab], stats.retried)
        yield rt
        delivered = CounterMetricFamily(
            f"{NS}_bus_delivered", "Messages handled successfully", labels=["service", "topic", "group"]
        )
        failed = CounterMetricFamily(
            f"{NS}_bus_handler_failures",
            "Failed handler attempts (each is retried, or dead-lettered at the last attempt)",
            labels=["service", "topic", "group"],
        )
        dur = HistogramMetricFamily(
            f"{NS}_bus_handler_duration_seconds", "Handler run time per message", labels=["service", "topic", "group"]
        )
        for (svc, topic, group), st in list(mx.handlers.items()):
            delivered.add_metric([svc, topic, group], st.delivered)
            failed.add_metric([svc, topic, group], st.failures)
            dur.add_metric([svc, topic, group], st.duration.buckets(), st.duration.sum)
        yield delivered
        yield failed
        yield dur
        backlog = GaugeMetricFamily(
            f"{NS}_bus_backlog_messages", "Messages waiting for a consumer group", labels=["service", "topic", "group"]
        )
        for (topic, group), n in mx.snap.get("backlog", {}).items():
            backlog.add_metric([lab, topic, _group_label(group)], n)
        yield backlog

    def _pipeline(self) -> Iterator[Metric]:
        h = HistogramMetricFamily(
            f"{NS}_pipeline_latency_seconds",
            "Order path stage latency: candle_to_signal, signal_to_decision, decision_to_order_sent, "
            "order_sent_to_fill (platform clock; the fill's exchange time)",
            labels=["service", "stage"],
        )
        for stage, hist in self.mx.stages.items():
            h.add_metric([self.mx.label, stage], hist.buckets(), hist.sum)
        yield h

    def _services(self) -> Iterator[Metric]:
        g = GaugeMetricFamily(
            f"{NS}_service_status", "1 for the service's current health status", labels=["service", "status"]
        )
        for name, status in self.mx.snap.get("health", {}).items():
            for s in ("ok", "degraded", "down"):
                g.add_metric([name, s], 1.0 if status == s else 0.0)
        yield g


def _trader(tr: Any, mx: Metrics) -> Iterator[Metric]:
    core = tr.core
    st = core.stats
    for key, name, doc in (
        ("orders_sent", "orders_sent", "Orders the exchange accepted"),
        ("rejected", "orders_rejected", "Orders the exchange rejected"),
        ("unknown_outcome", "orders_unknown_outcome", "Orders whose outcome was unknown (then queried)"),
        ("fills", "order_fills", "Fills applied"),
        ("requests", "order_requests", "Order requests received"),
    ):
        c = CounterMetricFamily(f"{NS}_{name}", doc, labels=["service"])
        c.add_metric(["trader"], float(st.get(key, 0)))
        yield c
    g = GaugeMetricFamily(f"{NS}_open_cycles", "Trade cycles open now", labels=["service"])
    g.add_metric(["trader"], float(len(core.open)))
    yield g
    closed = CounterMetricFamily(
        f"{NS}_cycles_closed",
        "Cycles closed by outcome (win, loss, breakeven, canceled, ...)",
        labels=["service", "outcome"],
    )
    for out, n in list(mx.cycles_closed.items()):
        closed.add_metric(["trader", out], n)
    yield closed
    for attr, name, doc in (
        ("killed", "trader_kill_switch", "1 while the trader's kill switch is on"),
        ("paused", "trader_paused", "1 while the trader takes no new entries"),
    ):
        k = GaugeMetricFamily(f"{NS}_{name}", doc, labels=["service"])
        k.add_metric(["trader"], 1.0 if getattr(core, attr, False) else 0.0)
        yield k


def _risk(rk: Any) -> Iterator[Metric]:
    t = rk.tracker
    for name, doc, v in (
        ("risk_kill_switch", "1 while the risk kill switch is on", 1.0 if t.killed else 0.0),
        ("risk_paused", "1 while risk pauses new entries", 1.0 if t.paused else 0.0),
    ):
        g = GaugeMetricFamily(f"{NS}_{name}", doc, labels=["service"])
        g.add_metric(["risk"], v)
        yield g
    c = CounterMetricFamily(f"{NS}_risk_checks", "Orders judged by the risk rules", labels=["service"])
    c.add_metric(["risk"], float(rk.checks))
    yield c
    refused = CounterMetricFamily(f"{NS}_risk_refusals", "Orders refused, by deciding rule", labels=["service", "rule"])
    rows = rk.rules_view()
    counts = {row["name"]: 0 for row in rows} | getattr(rk, "refused_by_rule", {})  # every rule from 0
    for rule, n in counts.items():
        refused.add_metric(["risk", rule], float(n))
    yield refused
    view = rk.state_view()
    eq = GaugeMetricFamily(f"{NS}_equity_quote", "Equity the risk rules see, in the quote asset", labels=["service"])
    eq.add_metric(["risk"], _f(view.equity) or 0.0)
    yield eq
    peak = GaugeMetricFamily(f"{NS}_equity_peak_quote", "Highest equity seen", labels=["service"])
    peak.add_metric(["risk"], _f(view.equity_peak) or 0.0)
    yield peak
    dd = GaugeMetricFamily(f"{NS}_drawdown_percent", "Drawdown from the equity peak, percent", labels=["service"])
    dd.add_metric(["risk"], _f(view.drawdown_pct) or 0.0)
    yield dd
    state = GaugeMetricFamily(
        f"{NS}_risk_rule_state", "1 for each rule's current state", labels=["service", "rule", "state"]
    )
    breached = GaugeMetricFamily(
        f"{NS}_risk_rule_triggered",
        "1 when a rule is breached or active (pause, blacklist)",
        labels=["service", "rule"],
    )
    for row in rows:
        for s in ("ok", "warning", "breached", "active", "disabled"):
            state.add_metric(["risk", row["name"], s], 1.0 if row["state"] == s else 0.0)
        breached.add_metric(["risk", row["name"]], 1.0 if row["state"] in ("breached", "active") else 0.0)
    yield state
    yield breached


def _coordinator(co: Any) -> Iterator[Metric]:
    c = CounterMetricFamily(f"{NS}_coordinator_decisions", "Signals decided, by outcome", labels=["service", "outcome"])
    for k, n in list(co.counts.items()):
        c.add_metric(["coordinator", k], float(n))
    yield c
    b = GaugeMetricFamily(
        f"{NS}_circuit_breaker_state", "1 for each breaker's current state", labels=["service", "dependency", "state"]
    )
    for dep, br in list(co.breakers.items()):
        snap = br.snapshot()
        for s in ("closed", "open", "half_open"):
            b.add_metric(["coordinator", dep, s], 1.0 if snap["state"] == s else 0.0)
    yield b


def _analyzer(an: Any) -> Iterator[Metric]:
    for attr, name, doc in (
        ("candles_seen", "analyzer_candles", "Candles analysed"),
        ("signals_sent", "analyzer_signals", "Signals published"),
    ):
        c = CounterMetricFamily(f"{NS}_{name}", doc, labels=["service"])
        c.add_metric(["analyzer"], float(getattr(an, attr, 0)))
        yield c


def _money(mx: Metrics) -> Iterator[Metric]:
    pockets = mx.snap.get("pockets")
    if pockets is not None:
        used = GaugeMetricFamily(
            f"{NS}_pocket_used_quote", "Capital reserved in each pocket", labels=["service", "pocket"]
        )
        free = GaugeMetricFamily(
            f"{NS}_pocket_available_quote", "Capital available in each pocket", labels=["service", "pocket"]
        )
        for p in pockets:
            used.add_metric(["portfolio", p.pocket_type], float(p.used_value))
            free.add_metric(["portfolio", p.pocket_type], float(p.available_value))
        yield used
        yield free
    portfolio = mx.host.services.get("portfolio")
    if portfolio is not None:
        v = GaugeMetricFamily(f"{NS}_portfolio_value_quote", "Portfolio value in the quote asset", labels=["service"])
        v.add_metric(["portfolio"], float(getattr(portfolio, "total_value", 0) or 0))
        yield v
    pnl = mx.snap.get("pnl")
    if pnl is not None:
        flat = {**pnl, **(pnl.get("summary") or {})} if isinstance(pnl, dict) else {}
        for key, name, doc in (
            ("realised_pnl", "pnl_realised_quote", "Realised PnL (fees included)"),
            ("unrealised_pnl", "pnl_unrealised_quote", "Unrealised PnL of open cycles"),
        ):
            val = _f(flat.get(key))
            if val is not None:
                g = GaugeMetricFamily(f"{NS}_{name}", doc, labels=["service"])
                g.add_metric(["pnl"], val)
                yield g


def install_metrics(app: Any, host: Host) -> None:
    """`GET /metrics` (Prometheus text format) on the app: all services in one-process mode, the service's
    own port in per-service mode. Absent when METRICS_ENABLED=false."""
    from fastapi import Response

    metrics = host.metrics
    if metrics is None:
        return

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(await metrics.render(), media_type=CONTENT_TYPE)
