"""`curl /metrics` on a demo run that has traded shows every family the issue lists, with live values."""

from __future__ import annotations

from tests.monitoring.conftest import samples
from tests.monitoring.receiver import Receiver

# family -> must some sample be > 0 after trading (False: present is enough, e.g. 0 rejections is right)
REQUIRED = {
    # bus
    "roottrading_bus_published_total": True,
    "roottrading_bus_delivered_total": True,
    "roottrading_bus_retried_total": False,
    "roottrading_bus_dead_lettered_total": False,
    "roottrading_bus_backlog_messages": False,
    "roottrading_bus_handler_duration_seconds_bucket": True,
    "roottrading_bus_handler_failures_total": False,
    # pipeline
    "roottrading_pipeline_latency_seconds_count": True,
    # gateway / exchange
    "roottrading_gateway_connected": True,
    "roottrading_gateway_reconnects_total": False,
    "roottrading_gateway_backfilled_candles_total": False,
    "roottrading_gateway_gaps_total": False,
    "roottrading_gateway_frames_total": True,
    "roottrading_gateway_frames_per_second": False,
    "roottrading_exchange_rest_weight_used": False,
    "roottrading_exchange_rest_weight_limit": True,
    "roottrading_exchange_rest_rate_limited_total": False,
    # trading
    "roottrading_orders_sent_total": True,
    "roottrading_order_fills_total": True,
    "roottrading_orders_rejected_total": False,
    "roottrading_orders_unknown_outcome_total": False,
    "roottrading_open_cycles": False,
    "roottrading_cycles_closed_total": True,
    "roottrading_equity_quote": True,
    "roottrading_pnl_realised_quote": False,
    "roottrading_pnl_unrealised_quote": False,
    "roottrading_pocket_used_quote": False,
    "roottrading_pocket_available_quote": True,
    "roottrading_risk_rule_state": True,
    "roottrading_risk_rule_triggered": False,
    "roottrading_risk_refusals_total": False,
    "roottrading_risk_checks_total": True,
    "roottrading_circuit_breaker_state": True,
    "roottrading_risk_kill_switch": False,
    "roottrading_trader_kill_switch": False,
    "roottrading_service_status": True,
    # process
    "process_cpu_seconds_total": True,
    "python_gc_collections_total": True,
}


def test_every_family_is_exported_with_live_values(demo_metrics: str) -> None:
    got = samples(demo_metrics)
    # a labelled family with nothing to count yet (no dead letter, no refusal) is still declared (# TYPE)
    declared = {line.split()[2] for line in demo_metrics.splitlines() if line.startswith("# TYPE")}
    missing = [n for n in REQUIRED if n not in got and n.removesuffix("_total") not in declared]
    assert not missing, missing
    zero = [n for n, live in REQUIRED.items() if live and not any(v > 0 for _, v in got[n])]
    assert not zero, zero


def test_every_pipeline_stage_and_service_is_labelled(demo_metrics: str) -> None:
    got = samples(demo_metrics)
    stages = {lab["stage"]: v for lab, v in got["roottrading_pipeline_latency_seconds_count"]}
    assert set(stages) == {"candle_to_signal", "signal_to_decision", "decision_to_order_sent", "order_sent_to_fill"}
    assert all(v > 0 for v in stages.values()), stages
    services = {lab["service"] for lab, _ in got["roottrading_service_status"]}
    assert {"gateway", "analyzer", "coordinator", "risk", "trader", "portfolio", "pnl"} <= services
    # every roottrading_* sample carries the service label (one-process mode: one endpoint, all services)
    unlabelled = {
        n for n, rows in got.items() if n.startswith("roottrading_") and any("service" not in lab for lab, _ in rows)
    }
    assert not unlabelled, unlabelled
    # a per-process consumer group is labelled by its service, not its object id (bounded series)
    assert all(
        lab.get("group") and not lab["group"].split("-")[-1].isdigit()
        for lab, _ in got["roottrading_bus_delivered_total"]
    )


def test_backlog_and_exchange_weight_have_series(demo_metrics: str) -> None:
    """Every consumed (topic, group) has a backlog series (0 is a value: caught up); the gateway's REST
    client reports the weight limit it read from the fake Binance's exchangeInfo."""
    got = samples(demo_metrics)
    consumed = {(lab["topic"], lab["group"]) for lab, _ in got["roottrading_bus_delivered_total"]}
    backlog = {(lab["topic"], lab["group"]): v for lab, v in got["roottrading_bus_backlog_messages"]}
    assert consumed <= set(backlog), consumed - set(backlog)
    assert all(v >= 0 for v in backlog.values())
    assert ({"service": "gateway"}, 6000.0) in got["roottrading_exchange_rest_weight_limit"]
    assert {lab["service"] for lab, _ in got["roottrading_exchange_rest_weight_used"]} == {"gateway"}
    codes = {lab["code"] for lab, _ in got["roottrading_exchange_rest_rate_limited_total"]}
    assert codes == {"429", "418"}


def test_the_demo_runs_notifications_arrive_at_a_local_receiver(demo_metrics: str, demo_receiver: Receiver) -> None:
    def seen() -> set[str]:
        return {t.split(":")[0] for t in demo_receiver.titles("/demo")}

    assert demo_receiver.wait(lambda: {"Cycle opened", "Cycle completed"} <= seen(), timeout=30), seen()
