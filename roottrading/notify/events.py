"""What is worth telling a person, from the bus messages that already exist.

`AlertBuilder` turns a message into at most one `Alert`, keeping the little state a transition needs (a
service's last health status, the gateway's connection, the last drift seen) so a report repeated every 10 s
becomes one alert when something changes, not one per report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from roottrading import messages as m

EVENTS = (
    "cycle_opened",
    "cycle_closed",
    "order_rejected",
    "risk_event",
    "service_down",
    "service_recovered",
    "gateway_disconnected",
    "reconciliation_drift",
    "daily_summary",
)


@dataclass(frozen=True)
class Alert:
    """One notification. `key` de-duplicates: the same key within the dedupe window is sent once."""

    event: str
    key: str
    title: str
    body: str
    level: str = "info"  # info, warning, critical (the dashboard bell colours by it)
    time: int = 0
    once: bool = False  # keyed by an id (a cycle, an order): never sent twice, whatever the window


@dataclass
class AlertBuilder:
    health: dict[str, str] = field(default_factory=dict)  # component -> last status seen
    gateway_connected: bool | None = None
    drift: tuple[str, ...] = ()

    def from_message(self, msg: m.Message) -> list[Alert]:
        topic, p = msg.topic, msg.payload
        if topic == m.CYCLE_UPDATES:
            return self._cycle(p, msg.ts)
        if topic == m.ORDER_UPDATES and p.event == "REJECTED":
            o = p.order
            return [
                Alert(
                    "order_rejected",
                    f"rejected:{o.client_order_id}",
                    f"Order rejected: {o.side.value} {o.quantity} {o.symbol}",
                    o.reject_reason or "rejected by the exchange",
                    "warning",
                    p.time,
                    once=True,
                )
            ]
        if topic == m.RISK_EVENTS:
            level = "critical" if p.action == "kill_switch" else "warning" if p.action != "resume" else "info"
            who = " ".join(x for x in (p.strategy, p.symbol) if x)
            return [
                Alert(
                    "risk_event",
                    f"risk:{p.rule}:{p.action}:{p.strategy or ''}:{p.symbol or ''}",
                    f"Risk {p.action}: {p.rule}" + (f" ({who})" if who else ""),
                    p.message,
                    level,
                    p.time,
                )
            ]
        if topic == m.SYSTEM_HEALTH:
            return self._health(p)
        return []

    def _cycle(self, c: Any, ts: int) -> list[Alert]:
        status = c.status.value
        if status == "ACTIVE" and c.entry_price is not None:
            return [
                Alert(
                    "cycle_opened",
                    f"opened:{c.id}",
                    f"Cycle opened: {c.symbol} {c.strategy}",
                    f"{c.side.value} {c.quantity} at {c.entry_price} (cycle {c.id})",
                    "info",
                    ts,
                    once=True,
                )
            ]
        if c.status.is_terminal:
            pnl = "" if c.profit_loss is None else f"PnL {c.profit_loss} ({c.profit_loss_percent}%)"
            reason = f", {c.close_reason}" if c.close_reason else ""
            return [
                Alert(
                    "cycle_closed",
                    f"closed:{c.id}",
                    f"Cycle {status.lower()}: {c.symbol} {c.strategy}",
                    f"{pnl}{reason} (cycle {c.id})".strip(),
                    "info" if c.profit_loss is None or c.profit_loss >= 0 else "warning",
                    ts,
                    once=True,
                )
            ]
        return []

    def _health(self, rep: m.HealthReport) -> list[Alert]:
        out: list[Alert] = []
        for name, comp in rep.components.items():
            status = str(comp.get("status", "ok"))
            before = self.health.get(name)
            self.health[name] = status
            if name == "gateway" and "connection" in comp:
                connected = comp["connection"] == "connected"
                if self.gateway_connected is True and not connected:
                    out.append(
                        Alert(
                            "gateway_disconnected",
                            f"gateway:{rep.time // 60_000}",
                            "Market data disconnected",
                            f"gateway connection: {comp['connection']}",
                            "critical",
                            rep.time,
                        )
                    )
                self.gateway_connected = connected
            if before is None or before == status:
                continue
            if status == "ok":
                out.append(
                    Alert(
                        "service_recovered",
                        f"health:{name}:ok:{rep.time}",
                        f"{name} recovered",
                        f"{name} is ok again (was {before})",
                        "info",
                        rep.time,
                    )
                )
            else:
                level = "critical" if status == "down" else "warning"
                out.append(
                    Alert(
                        "service_down",
                        f"health:{name}:{status}:{rep.time}",
                        f"{name} {status}",
                        _why(comp),
                        level,
                        rep.time,
                    )
                )
        drift = tuple(str(d) for d in (rep.components.get("portfolio", {}).get("drift_warnings") or []))
        if drift and drift != self.drift:
            out.append(
                Alert(
                    "reconciliation_drift",
                    f"drift:{hash(drift)}",
                    "Reconciliation drift",
                    "; ".join(drift)[:1500],
                    "warning",
                    rep.time,
                )
            )
        self.drift = drift
        return out


def _why(comp: dict[str, Any]) -> str:
    return str(comp.get("error") or {k: v for k, v in comp.items() if k != "status"})[:500]
