"""Risk manager service (reference port 5007): judges every new order against `rules.yaml`.

State comes from the bus (cycle updates, balances, candles for ATR, order requests) and, at start, from the
store (open cycles, cycles closed today), so a restarted risk manager knows today's losses. Rules are
reloaded when the file changes; a bad edit is refused and the previous rules stay in force.
Portfolio-level breaches (daily loss, drawdown, a strategy's loss streak) act at once - pause, disable the
strategy or pull the kill switch - and are announced on `risk.events` (messages.RiskEvent).

A pause or a disable by a rule is a lock with a duration (the rule's `cooldown`, in market time: the platform
clock, simulated in demo and backtest): when it is over the lock is lifted with a `resume` event and the rule
counts afresh. A user's disable (POST /strategies/{name}/disable) and the kill switch stay until a user lifts
them; an automatic lock never lifts or replaces a manual one. GET /state lists every lock with its `until`.

Every lock, the equity peak, the day's start and the loss streaks are stored (table safety_state, key "risk")
before a change is announced, and restored at start: no restart lifts a kill switch, shortens a cooldown,
or restarts the drawdown from a new peak.

Several instances (Redis bus): active/standby on a leader lease (runtime/leader.py). Every instance consumes
every message (broadcast groups) to keep its view warm; only the leader evaluates the rules, stores the safety
state, publishes `risk.events` and answers /check and the user's actions; a standby answers 503 naming the
leader (the coordinator tries its next configured URL). On winning the lease an instance reloads its state
from the store (service/risk/standby.py) before it acts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError

from roottrading import messages as m
from roottrading.domain import Candle, CycleStatus, OrderRequest, TradeCycle
from roottrading.domain.money import plain_text
from roottrading.risk import OrderIntent, RiskDecision, RiskEngine, RiskRules, RulesError, StateTracker
from roottrading.risk.engine import fmt_ms
from roottrading.risk.rules import default_rules_path, load_rules
from roottrading.risk.state import DAY_MS, MANUAL, Lock
from roottrading.runtime.errors import error_responses
from roottrading.runtime.leader import Leadership, NotLeader, leadership_for
from roottrading.runtime.leader_http import standby_route_class
from roottrading.runtime.params import check_amount, check_epoch_ms, json_body
from roottrading.runtime.service import Consumes, HealthStatus, Job, Service
from roottrading.store import CycleRepo, SafetyStateRepo

SAFETY_KEY = "risk"  # this service's document in safety_state


def rules_path_for(ctx: Any) -> Path:
    """ROOTTRADING_RULES (the setting risk_rules_path), else <data_dir>/rules.yaml if present, else the
    packaged defaults."""
    explicit: Path | None = ctx.settings.risk_rules_path
    if explicit:
        return Path(explicit)
    local = Path(ctx.settings.data_dir) / "rules.yaml"
    return local if local.is_file() else default_rules_path()


class LockView(BaseModel):
    """One lock, as GET /state shows it."""

    strategy: str | None = Field(description="the strategy locked; null: every new entry (trading paused)")
    rule: str = Field(
        description="the rule that set it; 'manual' for a user's disable, 'kill_switch' for the user's kill switch"
    )
    action: str = Field(description="pause | disable_strategy | kill_switch")
    reason: str
    automatic: bool = Field(description="lifted by time at `until`; false: only a user lifts it")
    since: int = Field(description="epoch ms (market time) when it was set")
    until: int | None = Field(description="epoch ms (market time) when it is lifted; null: until a user lifts it")


class StateView(BaseModel):
    """GET /state: the facts the rules are judged on, and what is locked until when."""

    now: int = Field(description="epoch ms of the platform clock (market time in demo and backtest)")
    equity: str
    equity_peak: str
    realised_pnl_today: str
    drawdown_pct: str
    open_cycles: int
    orders_last_minute: int
    paused: bool
    pause_reason: str
    killed: bool
    disabled_strategies: list[str]
    loss_streaks: dict[str, int]
    atr_pct: dict[str, str]
    locks: list[LockView]


def lock_view(lk: Lock) -> LockView:
    return LockView(
        strategy=lk.strategy,
        rule=lk.rule,
        action=lk.action,
        reason=lk.reason,
        automatic=lk.automatic,
        since=lk.since_ms,
        until=lk.until_ms,
    )


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
        self.reload_s = ctx.settings.risk_reload_s
        self.tracker = StateTracker(ctx.settings.risk_initial_equity, ctx.clock.now_ms())
        self.cycles = CycleRepo(ctx.db)
        self.safety = SafetyStateRepo(ctx.db)
        self._saved: dict[str, Any] | None = None  # the document last stored (unchanged: not written again)
        self.checks = 0
        self.refused = 0
        self.refused_by_rule: dict[str, int] = {}  # read by /metrics (runtime/metrics.py)
        self.lead: Leadership = Leadership()  # always leader until start() knows the bus

    # --- lifecycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        self.rules = load_rules(self.rules_path)  # a bad file at start stops start-up with a clear message
        self.engine = RiskEngine(self.rules)
        self.rules_mtime = self._mtime()
        self.tracker.atr_period = self.rules.rules.volatility.atr_period
        self.lead = leadership_for(self.ctx, self.name, on_elected=self.reload_state)
        if type(self.lead) is Leadership:
            await self.load_state()
        await self.lead.start()  # Redis: one attempt now; on winning, reload_state() runs before it acts

    async def stop(self) -> None:
        await self.lead.stop()  # a standby takes over at once rather than after the lease

    async def reload_state(self) -> None:
        """On winning the lease: a fresh view from the store (the durable safety state, the cycles), keeping
        what only the bus gives (last reported equity, ATRs, recent orders)."""
        from roottrading.services.risk.standby import fresh_tracker

        self.tracker = fresh_tracker(self.tracker, self.ctx.settings.risk_initial_equity, self.ctx.clock.now_ms())
        self._saved = None
        await self.load_state()

    async def load_state(self) -> None:
        now = self.ctx.clock.now_ms()
        stored = await self.safety.get(SAFETY_KEY)
        if stored is not None:  # before the replay: the replay must not re-count what the document holds
            self.tracker.restore(stored, now)
            self._saved = stored
            self.log.info(
                "risk safety state restored",
                killed=self.tracker.killed,
                paused=self.tracker.paused,
                locks=[f"{lk.strategy or '*'}:{lk.rule}" for lk in self.tracker.locks.values()],
                equity_peak=stored.get("equity_peak"),
            )
        for c in await self.cycles.open_cycles():
            self.tracker.on_cycle(c, now)
        done, _ = await self.cycles.query(status=[CycleStatus.COMPLETED.value], since=now - 7 * DAY_MS, limit=100_000)
        for c in sorted(done, key=lambda c: c.updated_at):
            self.tracker.on_cycle(c, now)
        self.log.info("risk rules loaded", path=str(self.rules_path), open_cycles=len(self.tracker.positions))
        await self.persist()

    async def persist(self) -> None:
        """Store the safety state if it changed. Called before every announcement; a store failure is an
        alert, yet the event still goes out (an unannounced kill switch would be worse than an unstored one)."""
        if not self.lead.is_leader():
            return  # a standby never writes the leader's document
        doc = self.tracker.to_doc()
        if doc == self._saved:
            return
        try:
            await self.safety.put(SAFETY_KEY, doc, self.ctx.clock.now_ms())
        except (SQLAlchemyError, OSError) as exc:
            self.log.critical("risk safety state NOT stored; a restart would lose it", error=repr(exc))
            return
        self._saved = doc

    def consumes(self) -> list[Consumes]:
        subs = [
            # broadcast: every instance (leader and standbys) sees the whole account (runtime/leader.py)
            Consumes(m.CYCLE_UPDATES, self.on_cycle, broadcast=True),
            Consumes(m.PORTFOLIO_BALANCES, self.on_balances, broadcast=True),
            Consumes(m.ORDER_REQUESTS, self.on_order_request, broadcast=True),
        ]
        subs += [Consumes(m.candles_topic(s), self.on_candle, broadcast=True) for s in self.ctx.settings.symbols]
        return subs

    def jobs(self) -> list[Job]:
        return [
            Job("reload-rules", self.reload_s, self.reload_if_changed),
            Job("expire-locks", self.ctx.settings.risk_locks_s, self.release_expired),
        ]

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
        await self.persist()

    async def on_balances(self, msg: m.Message) -> None:
        b: m.BalancesUpdate = msg.payload
        if b.total_value is not None:
            self.tracker.on_equity(b.total_value, self.ctx.clock.now_ms())
            await self._act_on_triggers()
            await self.persist()

    async def on_order_request(self, msg: m.Message) -> None:
        r: OrderRequest = msg.payload
        self.tracker.on_order(r.id, r.time or self.ctx.clock.now_ms())

    async def on_candle(self, msg: m.Message) -> None:
        c: Candle = msg.payload
        self.tracker.on_candle(c)
        await self.release_expired()  # candles move market time: a cooldown ends on the candle that passes it

    # --- locks ----------------------------------------------------------------------------------------
    def _until(self, rule: str, now: int) -> int | None:
        """When a lock set now by `rule` ends: now + its cooldown; a daily loss pause at the latest at 00:00
        UTC, when the new day starts its own count; None (manual) for a rule without cooldown."""
        cooldown = self.rules.rules.cooldown_ms(rule)
        until = now + cooldown if cooldown is not None else None
        if rule == "daily_loss_limit":
            midnight = (now // DAY_MS + 1) * DAY_MS
            until = midnight if until is None else min(until, midnight)
        return until

    async def release_expired(self) -> None:
        """Lift the automatic locks whose cooldown is over (market time) and say so. A `resume` event goes out
        only for what is really free again: a strategy with no other lock, trading with no other pause."""
        if not self.lead.is_leader():
            return  # the leader lifts locks; a standby reloads them from the store when it takes over
        now = self.ctx.clock.now_ms()
        expired = self.tracker.expire(now)
        if expired:
            await self.persist()
        for lk in expired:
            what = f"strategy {lk.strategy}" if lk.strategy else "new entries"
            why = f"{lk.rule} lock on {what} lifted: cooldown over (locked {fmt_ms(lk.since_ms)} - {fmt_ms(now)})"
            if lk.rule == "strategy_loss_streak":
                why += "; loss streak counted from 0"
            elif lk.rule in ("daily_loss_limit", "max_drawdown"):
                why += "; the rule counts from now"
            still = self.tracker.locks_on(lk.strategy)
            if still:
                self.log.info("lock lifted, still locked", rule=lk.rule, by=[o.rule for o in still], why=why)
                continue
            await self._event(lk.rule, "resume", why, strategy=lk.strategy)

    async def _act_on_triggers(self) -> None:
        if not self.lead.is_leader():
            return
        await self.release_expired()
        now = self.ctx.clock.now_ms()
        state = self.tracker.snapshot(now)
        for t in self.engine.triggers(state):
            if t.action == "kill_switch":
                if not self.tracker.killed:
                    await self.kill_switch(f"{t.rule}: {t.message}", rule=t.rule)
                continue
            if t.action not in ("pause", "disable_strategy"):
                continue
            strategy = t.strategy if t.action == "disable_strategy" else None
            until = self._until(t.rule, now)
            lk = Lock(t.rule, t.action, t.message, now, until, strategy)
            if not self.tracker.lock(lk):
                continue  # already locked by this rule: the first lock's until stands
            tail = f"; locked until {fmt_ms(until)}" if until is not None else "; locked until a manual resume"
            # the event's strategy is the lock's scope: a pause stops every strategy (the message names the
            # one that tripped it), and its resume, with no strategy either, must undo exactly that
            await self._event(t.rule, t.action, t.message + tail, strategy=strategy)

    async def _event(
        self, rule: str, action: str, message: str, *, symbol: str | None = None, strategy: str | None = None
    ) -> None:
        if not self.lead.is_leader():  # fencing: a leader whose lease may have lapsed stays silent
            raise NotLeader(self.name, await self.lead.leader())
        await self.persist()  # stored before it is announced
        ev = m.RiskEvent(
            time=self.ctx.clock.now_ms(), rule=rule, action=action, message=message, symbol=symbol, strategy=strategy
        )
        self.log.warning("risk event", rule=rule, action=action, message=message, strategy=strategy)
        await self.ctx.publish(m.RISK_EVENTS, ev, key=symbol or strategy or rule)

    # --- the API other services call ------------------------------------------------------------------
    async def check(self, intent: OrderIntent) -> RiskDecision:
        """Judge one order. Refusals that change the state (pause, kill switch) are applied and announced.
        Raises NotLeader on a standby."""
        await self._require_leader()
        await self._act_on_triggers()
        now = self.ctx.clock.now_ms()
        decision = self.engine.check(intent, self.tracker.snapshot(now))
        self.checks += 1
        if decision.allowed:
            self.tracker.on_order(intent.id, intent.time or now)
        else:
            self.refused += 1
            rule = decision.rule or "unknown"
            self.refused_by_rule[rule] = self.refused_by_rule.get(rule, 0) + 1
            self.log.info(
                "order refused",
                intent=intent.id,
                symbol=intent.symbol,
                strategy=intent.strategy,
                reasons=decision.reasons,
            )
        return decision

    async def kill_switch(self, reason: str = "kill switch pulled by user", *, rule: str = "kill_switch") -> None:
        """Stop new entries and tell the trader to close everything (RiskEvent action kill_switch). Never
        lifted by time: only a user's resume ends it."""
        await self._require_leader()
        self.tracker.lock(Lock(rule, "kill_switch", reason, self.ctx.clock.now_ms(), None))
        await self._event(rule, "kill_switch", reason)

    async def resume(self, reason: str = "resumed by user") -> None:
        """The user's resume: lifts pauses, the kill switch and automatic strategy locks. A strategy a user
        disabled stays disabled (announced again, since the trader's resume clears its own pauses)."""
        await self._require_leader()
        self.tracker.resume()
        await self._event("resume", "resume", reason)
        for lk in list(self.tracker.locks.values()):
            await self._event(MANUAL, "disable_strategy", lk.reason, strategy=lk.strategy)

    async def disable_strategy(self, name: str, reason: str = "disabled by user") -> bool:
        """A user's disable: stays until the user enables the strategy again, whatever the cooldowns."""
        await self._require_leader()
        added = self.tracker.lock(Lock(MANUAL, "disable_strategy", reason, self.ctx.clock.now_ms(), None, name))
        if added:
            await self._event(MANUAL, "disable_strategy", f"strategy {name} {reason}", strategy=name)
        return added

    async def enable_strategy(self, name: str) -> None:
        """A user's enable: lifts every lock on the strategy (manual or automatic); its streak restarts."""
        await self._require_leader()
        self.tracker.reset_strategy(name)
        await self._event(MANUAL, "resume", f"strategy {name} re-enabled by user", strategy=name)

    async def _require_leader(self) -> None:
        if not self.lead.is_leader():
            raise NotLeader(self.name, await self.lead.leader())

    def state_view(self) -> StateView:
        now = self.ctx.clock.now_ms()
        s = self.tracker.snapshot(now)
        return StateView(
            now=now,
            equity=plain_text(s.equity),
            equity_peak=plain_text(s.equity_peak),
            realised_pnl_today=plain_text(s.realised_pnl_today),
            drawdown_pct=str(s.drawdown_pct),
            open_cycles=len(s.positions),
            orders_last_minute=s.orders_last_minute(),
            paused=s.paused,
            pause_reason=s.pause_reason,
            killed=s.killed,
            disabled_strategies=sorted(s.disabled_strategies),
            loss_streaks=dict(sorted(s.loss_streaks.items())),
            atr_pct={k: str(v) for k, v in s.atr_pct.items()},
            locks=[lock_view(lk) for lk in sorted(s.locks, key=lambda lk: (lk.since_ms, lk.strategy or ""))],
        )

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
        r = APIRouter(route_class=standby_route_class())

        @r.get("/rules")
        async def rules() -> list[dict[str, Any]]:
            await self.release_expired()
            return self.rules_view()

        @r.get("/state")
        async def state() -> StateView:
            """Equity, drawdown, today's PnL, loss streaks, and every lock: what, by which rule, since, until."""
            await self.release_expired()
            return self.state_view()

        @r.post("/check", responses=error_responses(422), openapi_extra=json_body(OrderIntent))
        async def check(request: Request) -> dict[str, Any]:
            try:
                intent = check_intent(msgspec.json.decode(await request.body(), type=OrderIntent))
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
                raise HTTPException(422, f"bad order intent: {exc}") from None
            return m.to_builtins(await self.check(intent))

        @r.post("/kill-switch")
        async def kill() -> dict[str, Any]:
            await self.kill_switch()
            return {"killed": True, "paused": True}

        @r.post("/resume")
        async def resume() -> dict[str, Any]:
            await self.resume()
            return {"killed": False, "paused": False}

        @r.post("/strategies/{name}/disable")
        async def disable(name: str) -> dict[str, Any]:
            """Disable a strategy's new entries until it is enabled again (no cooldown lifts it)."""
            await self.disable_strategy(name)
            return {"strategy": name, "enabled": False}

        @r.post("/strategies/{name}/enable")
        async def enable(name: str) -> dict[str, Any]:
            """Lift every lock on the strategy, the user's and the rules', and restart its loss streak."""
            await self.enable_strategy(name)
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
            "locks": len(t.locks),
            "leadership": self.lead.details(),
        }
        return HealthStatus(status="degraded" if self.rules_error else "ok", details=details)


def check_intent(intent: OrderIntent) -> OrderIntent:
    """What msgspec's type check lets through but the rules cannot judge: NaN, infinite, non-positive or
    out-of-range amounts (the Decimal arithmetic raised InvalidOperation, a 500) and a time outside epoch ms."""
    check_amount(intent.quantity, "quantity")
    check_amount(intent.price, "price")
    check_epoch_ms(intent.time, "time")
    return intent
