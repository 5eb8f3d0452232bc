"""Risk manager service (reference port 5007): judges every new order against `rules.yaml`.

State comes from the bus (cycle updates, balances, candles for ATR, order requests) and, at start, from the
store (open cycles, cycles closed today), so a restarted risk manager knows today's losses. Rules are
reloaded when the file changes; a bad edit is refused and the previous rules stay in force.
Portfolio-level breaches (daily loss, drawdown, a strategy's loss streak) act at once - pause, disable the
strategy or pull the kill switch - and are announced on `risk.events` (messages.RiskEvent).
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from fastapi import APIRouter, HTTPException, Request

from roottrading import messages as m
from roottrading.domain import Candle, CycleStatus, OrderRequest, TradeCycle
from roottrading.risk import OrderIntent, RiskDecision, RiskEngine, RiskRules, RulesError, StateTracker
from roottrading.risk.rules import default_rules_path, load_rules
from roottrading.risk.state import DAY_MS
from roottrading.runtime.errors import error_responses
from roottrading.runtime.params import check_amount, check_epoch_ms, json_body
from roottrading.runtime.service import Consumes, HealthStatus, Job, Service
from roottrading.store import CycleRepo

DEFAULT_EQUITY = Decimal(10_000)
RULES_ENV = "ROOTTRADING_RULES"


def rules_path_for(ctx: Any) -> Path:
    """extras["risk_rules_path"], else $ROOTTRADING_RULES, else <data_dir>/rules.yaml if present, else the
    packaged defaults."""
    explicit = ctx.extras.get("risk_rules_path") or os.environ.get(RULES_ENV)
    if explicit:
        return Path(explicit)
    local = Path(ctx.settings.data_dir) / "rules.yaml"
    return local if local.is_file() else default_rules_path()


class RiskService(Service):
    name = "risk"
    description = "Checks orders against rules.yaml; pauses, disables strategies, kill switch."

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self.rules_path = rules_path_for(ctx)
        self.rules: RiskRules = RiskRules()
        self.engine = RiskEngine(self.rules)
        self.rules_mtime: float | None = None
        self.rules_error: str | None = None
        self.reload_s = float(ctx.extras.get("risk_reload_s", 2.0))
        self.tracker = StateTracker(Decimal(str(ctx.extras.get("initial_equity", DEFAULT_EQUITY))), ctx.clock.now_ms())
        self.cycles = CycleRepo(ctx.db)
        self.checks = 0
        self.refused = 0

    # --- lifecycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        self.rules = load_rules(self.rules_path)  # a bad file at start stops start-up with a clear message
        self.engine = RiskEngine(self.rules)
        self.rules_mtime = self._mtime()
        self.tracker.atr_period = self.rules.rules.volatility.atr_period
        now = self.ctx.clock.now_ms()
        for c in await self.cycles.open_cycles():
            self.tracker.on_cycle(c, now)
        done, _ = await self.cycles.query(status=[CycleStatus.COMPLETED.value], since=now - 7 * DAY_MS, limit=100_000)
        for c in sorted(done, key=lambda c: c.updated_at):
            self.tracker.on_cycle(c, now)
        self.log.info("risk rules loaded", path=str(self.rules_path), open_cycles=len(self.tracker.positions))

    def consumes(self) -> list[Consumes]:
        subs = [
            Consumes(m.CYCLE_UPDATES, self.on_cycle),
            Consumes(m.PORTFOLIO_BALANCES, self.on_balances),
            Consumes(m.ORDER_REQUESTS, self.on_order_request),
        ]
        subs += [Consumes(m.candles_topic(s), self.on_candle) for s in self.ctx.settings.symbols]
        return subs

    def jobs(self) -> list[Job]:
        return [Job("reload-rules", self.reload_s, self.reload_if_changed)]

    # --- rules file -----------------------------------------------------------------------------------
    def _mtime(self) -> float | None:
        try:
            return self.rules_path.stat().st_mtime_ns / 1e9
        except OSError:
            return None

    async def reload_if_changed(self) -> bool:
        """Reload when the file's mtime moved. True if new rules are now in force."""
        mtime = self._mtime()
        if mtime is None or mtime == self.rules_mtime:
            return False
        self.rules_mtime = mtime
        try:
            rules = load_rules(self.rules_path)
        except RulesError as exc:
            self.rules_error = str(exc)
            self.log.error("rules edit refused; previous rules stay in force", error=str(exc))
            return False
        self.rules, self.engine, self.rules_error = rules, RiskEngine(rules), None
        self.tracker.atr_period = rules.rules.volatility.atr_period
        self.log.info("risk rules reloaded", path=str(self.rules_path))
        await self._act_on_triggers()
        return True

    # --- state from the bus ---------------------------------------------------------------------------
    async def on_cycle(self, msg: m.Message) -> None:
        c: TradeCycle = msg.payload
        self.tracker.on_cycle(c, self.ctx.clock.now_ms())
        await self._act_on_triggers()

    async def on_balances(self, msg: m.Message) -> None:
        b: m.BalancesUpdate = msg.payload
        if b.total_value is not None:
            self.tracker.on_equity(b.total_value, self.ctx.clock.now_ms())
            await self._act_on_triggers()

    async def on_order_request(self, msg: m.Message) -> None:
        r: OrderRequest = msg.payload
        self.tracker.on_order(r.id, r.time or self.ctx.clock.now_ms())

    async def on_candle(self, msg: m.Message) -> None:
        c: Candle = msg.payload
        self.tracker.on_candle(c)

    async def _act_on_triggers(self) -> None:
        state = self.tracker.snapshot(self.ctx.clock.now_ms())
        for t in self.engine.triggers(state):
            if t.action == "kill_switch" and not self.tracker.killed:
                await self.kill_switch(f"{t.rule}: {t.message}", rule=t.rule)
            elif t.action == "pause" and not self.tracker.paused:
                self.tracker.pause(t.rule, t.message)
                await self._event(t.rule, "pause", t.message)
            elif t.action == "disable_strategy" and t.strategy and t.strategy not in self.tracker.disabled:
                self.tracker.disabled.add(t.strategy)
                await self._event(t.rule, "disable_strategy", t.message, strategy=t.strategy)

    async def _event(
        self, rule: str, action: str, message: str, *, symbol: str | None = None, strategy: str | None = None
    ) -> None:
        ev = m.RiskEvent(
            time=self.ctx.clock.now_ms(), rule=rule, action=action, message=message, symbol=symbol, strategy=strategy
        )
        self.log.warning("risk event", rule=rule, action=action, message=message, strategy=strategy)
        await self.ctx.publish(m.RISK_EVENTS, ev, key=symbol or strategy or rule)

    # --- the API other services call ------------------------------------------------------------------
    async def check(self, intent: OrderIntent) -> RiskDecision:
        """Judge one order. Refusals that change the state (pause, kill switch) are applied and announced."""
        await self._act_on_triggers()
        now = self.ctx.clock.now_ms()
        decision = self.engine.check(intent, self.tracker.snapshot(now))
        self.checks += 1
        if decision.allowed:
            self.tracker.on_order(intent.id, intent.time or now)
        else:
            self.refused += 1
            self.log.info(
                "order refused",
                intent=intent.id,
                symbol=intent.symbol,
                strategy=intent.strategy,
                reasons=decision.reasons,
            )
        return decision

    async def kill_switch(self, reason: str = "kill switch pulled by user", *, rule: str = "kill_switch") -> None:
        """Stop new entries and tell the trader to close everything (RiskEvent action kill_switch)."""
        self.tracker.killed = True
        self.tracker.pause(rule, reason)
        await self._event(rule, "kill_switch", reason)

    async def resume(self, reason: str = "resumed by user") -> None:
        self.tracker.resume()
        self.tracker.disabled.clear()
        for s in list(self.tracker.loss_streaks):
            self.tracker.loss_streaks[s] = 0
        await self._event("resume", "resume", reason)

    def rules_view(self) -> list[dict[str, Any]]:
        state = self.tracker.snapshot(self.ctx.clock.now_ms())
        return [
            {
                "name": s.name,
                "enabled": s.enabled,
                "limit": s.limit,
                "value": s.value,
                "state": s.state,
                "action": s.action,
            }
            for s in self.engine.status(state)
        ]

    def router(self) -> APIRouter:
        r = APIRouter()

        @r.get("/rules")
        async def rules() -> list[dict[str, Any]]:
            return self.rules_view()

        @r.get("/state")
        async def state() -> dict[str, Any]:
            s = self.tracker.snapshot(self.ctx.clock.now_ms())
            return {
                "equity": str(s.equity),
                "equity_peak": str(s.equity_peak),
                "realised_pnl_today": str(s.realised_pnl_today),
                "drawdown_pct": str(s.drawdown_pct),
                "open_cycles": len(s.positions),
                "orders_last_minute": s.orders_last_minute(),
                "paused": s.paused,
                "pause_reason": s.pause_reason,
                "killed": s.killed,
                "disabled_strategies": sorted(s.disabled_strategies),
                "atr_pct": {k: str(v) for k, v in s.atr_pct.items()},
            }

        @r.post("/check", responses=error_responses(422), openapi_extra=json_body(OrderIntent))
        async def check(request: Request) -> dict[str, Any]:
            try:
                intent = check_intent(msgspec.json.decode(await request.body(), type=OrderIntent))
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
                raise HTTPException(422, f"bad order intent: {exc}") from None
            return m.to_builtins(await self.check(intent))  # type: ignore[no-any-return]

        @r.post("/kill-switch")
        async def kill() -> dict[str, Any]:
            await self.kill_switch()
            return {"killed": True, "paused": True}

        @r.post("/resume")
        async def resume() -> dict[str, Any]:
            await self.resume()
            return {"killed": False, "paused": False}

        @r.post("/strategies/{name}/enable")
        async def enable(name: str) -> dict[str, Any]:
            self.tracker.reset_strategy(name)
            await self._event("strategy_loss_streak", "resume", f"strategy {name} re-enabled", strategy=name)
            return {"strategy": name, "enabled": True}

        return r

    async def health(self) -> HealthStatus:
        t = self.tracker
        details = {
            "rules_path": str(self.rules_path),
            "rules_error": self.rules_error,
            "checks": self.checks,
            "refused": self.refused,
            "paused": t.paused,
            "pause_reason": t.pause_reason,
            "killed": t.killed,
            "disabled_strategies": sorted(t.disabled),
        }
        return HealthStatus(status="degraded" if self.rules_error else "ok", details=details)


def check_intent(intent: OrderIntent) -> OrderIntent:
    """What msgspec's type check lets through but the rules cannot judge: NaN, infinite, non-positive or
    out-of-range amounts (the Decimal arithmetic raised InvalidOperation, a 500) and a time outside epoch ms."""
    check_amount(intent.quantity, "quantity")
    check_amount(intent.price, "price")
    check_epoch_ms(intent.time, "time")
    return intent
