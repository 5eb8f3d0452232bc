"""The pure evaluation core: `RiskEngine.check(intent, state) -> RiskDecision`. No I/O, no clock, no bus.

Order of evaluation: exits are always allowed (closing a position reduces risk; a loss limit must never trap
a position open). Then the gates that refuse an entry outright (kill switch, pause, disabled strategy,
blacklist, hours, loss limits, counts). Then the size rules, each of which may shrink the quantity (or
reject, per its configured action); the smallest allowed quantity wins.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

import msgspec

from roottrading.domain import Side
from roottrading.risk.rules import RiskRules, TradingHoursRule
from roottrading.risk.state import MANUAL, Lock, RiskState

QTY_QUANTUM = Decimal("0.00000001")


class OrderIntent(msgspec.Struct, frozen=True, kw_only=True):
    """What the coordinator (or a user) wants to send. `is_exit`: a SELL that closes an open long."""

    id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    strategy: str = "manual"
    is_exit: bool = False
    time: int = 0
    cycle_id: str | None = None  # a BUY adding to this open cycle (position_adjustment): not a new cycle


class RiskDecision(msgspec.Struct, frozen=True, kw_only=True):
    """allowed: may the order go; action: allow | shrink | reject | pause | disable_strategy | kill_switch;
    quantity: the quantity allowed (0 when refused); reasons: one human-readable line per rule that acted;
    rule: the rule that decided a refusal (None when allowed)."""

    allowed: bool
    action: str
    quantity: Decimal
    reasons: list[str] = []
    rule: str | None = None


@dataclass(frozen=True)
class Trigger:
    """A portfolio-level breach the service must act on (pause, disable a strategy, kill switch)."""

    rule: str
    action: str
    message: str
    strategy: str | None = None


@dataclass(frozen=True)
class RuleStatus:
    name: str
    enabled: bool
    limit: str
    value: str
    state: str  # ok | warning (>= 80% of the limit) | breached | disabled | active (pause, blacklist)
    action: str


def _pct(x: Decimal) -> str:
    return f"{x.quantize(Decimal('0.01'))}%"


class RiskEngine:
    def __init__(self, rules: RiskRules) -> None:
        self.rules = rules

    # --- portfolio-level breaches ---------------------------------------------------------------------
    def triggers(self, state: RiskState) -> list[Trigger]:
        r = self.rules.rules
        out: list[Trigger] = []
        if r.daily_loss_limit.enabled and state.daily_loss_pct >= r.daily_loss_limit.limit_pct:
            out.append(
                Trigger(
                    "daily_loss_limit",
                    r.daily_loss_limit.action,
                    f"daily loss limit reached: realised {state.realised_pnl_today} today = "
                    f"-{_pct(state.daily_loss_pct)} of equity (limit {r.daily_loss_limit.limit_pct}%)",
                )
            )
        if r.max_drawdown.enabled and state.drawdown_pct >= r.max_drawdown.limit_pct:
            out.append(
                Trigger(
                    "max_drawdown",
                    r.max_drawdown.action,
                    f"max drawdown reached: {_pct(state.drawdown_pct)} below the peak "
                    f"{state.equity_peak} (limit {r.max_drawdown.limit_pct}%)",
                )
            )
        if r.strategy_loss_streak.enabled:
            for strat, n in sorted(state.loss_streaks.items()):
                if n >= r.strategy_loss_streak.max_consecutive_losses and strat not in state.disabled_strategies:
                    out.append(
                        Trigger(
                            "strategy_loss_streak",
                            r.strategy_loss_streak.action,
                            f"strategy {strat} lost {n} cycles in a row (limit "
                            f"{r.strategy_loss_streak.max_consecutive_losses})",
                            strategy=strat,
                        )
                    )
        return out

    # --- one order ------------------------------------------------------------------------------------
    def check(self, intent: OrderIntent, state: RiskState) -> RiskDecision:
        if intent.is_exit:
            return RiskDecision(
                allowed=True,
                action="allow",
                quantity=intent.quantity,
                reasons=["exit: closing a position is never blocked"],
            )
        if intent.quantity <= 0 or intent.price <= 0:
            return _refuse(
                "reject", "invalid_order", f"quantity {intent.quantity} and price {intent.price} must be positive"
            )
        refusal = self._gates(intent, state)
        if refusal is not None:
            return refusal
        return self._size(intent, state)

    def _gates(self, intent: OrderIntent, state: RiskState) -> RiskDecision | None:
        r = self.rules.rules
        if state.killed:
            return _refuse("kill_switch", "kill_switch", "kill switch active: no new entries until resumed")
        if state.paused:
            g = state.lock_for(None)
            why = f"{state.pause_reason or 'paused by user'}{_until(g) if g else ''}"
            return _refuse("pause", "pause", f"new entries paused: {why}")
        if intent.strategy in state.disabled_strategies:
            lk = state.lock_for(intent.strategy)
            return _refuse(
                "disable_strategy",
                lk.rule if lk else "strategy_loss_streak",
                f"strategy {intent.strategy} is disabled by "
                + ("a user until enabled again" if lk and lk.rule == MANUAL else "the risk manager")
                + (_until(lk) if lk and lk.rule != MANUAL else ""),
            )
        if r.symbol_blacklist.enabled and intent.symbol.upper() in r.symbol_blacklist.symbols:
            return _refuse("reject", "symbol_blacklist", f"{intent.symbol} is blacklisted")
        if r.trading_hours.enabled and not _in_hours(state.now_ms, r.trading_hours):
            th = r.trading_hours
            return _refuse("reject", "trading_hours", f"outside trading hours {th.start}-{th.end} UTC")
        for t in self.triggers(state):
            if t.strategy is None or t.strategy == intent.strategy:
                return _refuse(t.action, t.rule, t.message)
        adds = intent.cycle_id is not None and any(p.cycle_id == intent.cycle_id for p in state.positions)
        if r.max_open_cycles.enabled and len(state.positions) >= r.max_open_cycles.limit and not adds:
            return _refuse(
                "reject", "max_open_cycles", f"{len(state.positions)} open cycles, limit {r.max_open_cycles.limit}"
            )
        if r.max_orders_per_minute.enabled and state.orders_last_minute() >= r.max_orders_per_minute.limit:
            return _refuse(
                "reject",
                "max_orders_per_minute",
                f"{state.orders_last_minute()} orders in the last minute, limit {r.max_orders_per_minute.limit}",
            )
        return None

    def _size(self, intent: OrderIntent, state: RiskState) -> RiskDecision:
        r = self.rules.rules
        qty, price, reasons, shrunk = intent.quantity, intent.price, [], False

        def cap(rule: str, action: str, max_qty: Decimal, why: str) -> RiskDecision | None:
            nonlocal qty, shrunk
            if qty <= max_qty:
                return None
            if action != "shrink" or max_qty <= 0:
                return _refuse("reject", rule, why if max_qty > 0 else f"{why}; no room left")
            qty, shrunk = max_qty.quantize(QTY_QUANTUM, rounding=ROUND_DOWN), True
            reasons.append(f"{why}: shrunk to {qty}")
            if qty <= 0:
                return _refuse("reject", rule, f"{why}; no room left")
            return None

        vol = r.volatility
        atr = state.atr_pct.get(intent.symbol)
        if vol.enabled and atr is not None and atr > vol.max_atr_pct:
            why = f"volatility ATR {_pct(atr)} above {vol.max_atr_pct}%"
            if (d := cap("volatility", vol.action, qty * vol.shrink_factor, why)) is not None:
                return d
        ps = r.max_position_size
        if ps.enabled:
            limits = [state.equity * ps.limit_pct / 100]
            if ps.limit_quote is not None:
                limits.append(ps.limit_quote)
            if intent.symbol.upper() in ps.per_symbol_quote:
                limits.append(ps.per_symbol_quote[intent.symbol.upper()])
            max_notional = min(limits)
            # an addition to an open cycle: the cycle's whole position is what the limit caps
            held = sum((p.notional for p in state.positions if p.cycle_id == intent.cycle_id), Decimal(0))
            size = (qty * price + held).quantize(Decimal("0.01"))
            why = f"position size {size} above max {max_notional.quantize(Decimal('0.01'))}"
            if (d := cap("max_position_size", ps.action, (max_notional - held) / price, why)) is not None:
                return d
        ea = r.max_exposure_per_asset
        if ea.enabled:
            room = state.equity * ea.limit_pct / 100 - state.exposure(intent.symbol)
            why = f"exposure on {intent.symbol} would exceed {ea.limit_pct}% of equity"
            if (d := cap("max_exposure_per_asset", ea.action, room / price, why)) is not None:
                return d
        te = r.max_total_exposure
        if te.enabled:
            room = state.equity * te.limit_pct / 100 - state.exposure()
            why = f"total exposure would exceed {te.limit_pct}% of equity"
            if (d := cap("max_total_exposure", te.action, room / price, why)) is not None:
                return d
        return RiskDecision(
            allowed=True, action="shrink" if shrunk else "allow", quantity=qty, reasons=reasons or ["within every rule"]
        )

    # --- live view for GET /rules ---------------------------------------------------------------------
    def status(self, state: RiskState) -> list[RuleStatus]:
        r = self.rules.rules
        eq = state.equity if state.equity > 0 else Decimal(1)
        by_symbol: dict[str, Decimal] = {}
        for p in state.positions:
            by_symbol[p.symbol] = by_symbol.get(p.symbol, Decimal(0)) + p.notional
        worst_asset = max(by_symbol.values(), default=Decimal(0)) / eq * 100
        worst_atr = max(state.atr_pct.values(), default=Decimal(0))
        max_streak = max(state.loss_streaks.values(), default=0)

        def level(value: Decimal, limit: Decimal, enabled: bool) -> str:
            if not enabled:
                return "disabled"
            if value >= limit:
                return "breached"
            return "warning" if limit > 0 and value >= limit * Decimal("0.8") else "ok"

        ps = r.max_position_size
        th = r.trading_hours
        rows = [
            RuleStatus(
                "max_exposure_per_asset",
                ea.enabled,
                f"{ea.limit_pct}%",
                _pct(worst_asset),
                level(worst_asset, ea.limit_pct, ea.enabled),
                ea.action,
            )
            for ea in [r.max_exposure_per_asset]
        ]
        total = state.exposure() / eq * 100
        rows += [
            RuleStatus(
                "max_total_exposure",
                r.max_total_exposure.enabled,
                f"{r.max_total_exposure.limit_pct}%",
                _pct(total),
                level(total, r.max_total_exposure.limit_pct, r.max_total_exposure.enabled),
                r.max_total_exposure.action,
            ),
            RuleStatus(
                "max_open_cycles",
                r.max_open_cycles.enabled,
                str(r.max_open_cycles.limit),
                str(len(state.positions)),
                level(Decimal(len(state.positions)), Decimal(r.max_open_cycles.limit), r.max_open_cycles.enabled),
                r.max_open_cycles.action,
            ),
            RuleStatus(
                "max_position_size",
                ps.enabled,
                f"{ps.limit_pct}%" + (f" / {ps.limit_quote}" if ps.limit_quote else ""),
                f"{(state.equity * ps.limit_pct / 100).quantize(Decimal('0.01'))} quote max per order",
                "ok" if ps.enabled else "disabled",
                ps.action,
            ),
            RuleStatus(
                "daily_loss_limit",
                r.daily_loss_limit.enabled,
                f"{r.daily_loss_limit.limit_pct}%",
                _pct(state.daily_loss_pct),
                level(state.daily_loss_pct, r.daily_loss_limit.limit_pct, r.daily_loss_limit.enabled),
                r.daily_loss_limit.action,
            ),
            RuleStatus(
                "max_drawdown",
                r.max_drawdown.enabled,
                f"{r.max_drawdown.limit_pct}%",
                _pct(state.drawdown_pct),
                level(state.drawdown_pct, r.max_drawdown.limit_pct, r.max_drawdown.enabled),
                r.max_drawdown.action,
            ),
            RuleStatus(
                "volatility",
                r.volatility.enabled,
                f"ATR {r.volatility.max_atr_pct}%",
                _pct(worst_atr),
                level(worst_atr, r.volatility.max_atr_pct, r.volatility.enabled),
                r.volatility.action,
            ),
            RuleStatus(
                "max_orders_per_minute",
                r.max_orders_per_minute.enabled,
                str(r.max_orders_per_minute.limit),
                str(state.orders_last_minute()),
                level(
                    Decimal(state.orders_last_minute()),
                    Decimal(r.max_orders_per_minute.limit),
                    r.max_orders_per_minute.enabled,
                ),
                r.max_orders_per_minute.action,
            ),
            RuleStatus(
                "symbol_blacklist",
                r.symbol_blacklist.enabled,
                ",".join(r.symbol_blacklist.symbols) or "-",
                str(len(r.symbol_blacklist.symbols)),
                ("active" if r.symbol_blacklist.symbols else "ok") if r.symbol_blacklist.enabled else "disabled",
                r.symbol_blacklist.action,
            ),
            RuleStatus(
                "trading_hours",
                th.enabled,
                f"{th.start}-{th.end} UTC",
                "open" if _in_hours(state.now_ms, th) else "closed",
                ("ok" if _in_hours(state.now_ms, th) else "breached") if th.enabled else "disabled",
                th.action,
            ),
            RuleStatus(
                "strategy_loss_streak",
                r.strategy_loss_streak.enabled,
                str(r.strategy_loss_streak.max_consecutive_losses),
                str(max_streak),
                level(
                    Decimal(max_streak),
                    Decimal(r.strategy_loss_streak.max_consecutive_losses),
                    r.strategy_loss_streak.enabled,
                ),
                r.strategy_loss_streak.action,
            ),
            RuleStatus("pause", True, "-", state.pause_reason or "-", "active" if state.paused else "ok", "pause"),
            RuleStatus(
                "kill_switch",
                True,
                "-",
                "engaged" if state.killed else "-",
                "active" if state.killed else "ok",
                "kill_switch",
            ),
        ]
        return rows


def fmt_ms(ms: int) -> str:
    """Epoch ms as 'YYYY-MM-DD HH:MM UTC' for messages people read."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _until(lk: Lock) -> str:
    if lk.until_ms is not None:
        return f" ({lk.rule}, until {fmt_ms(lk.until_ms)})"
    return f" ({lk.rule}, until a manual resume)"


def _refuse(action: str, rule: str, reason: str) -> RiskDecision:
    return RiskDecision(allowed=False, action=action, quantity=Decimal(0), reasons=[f"{rule}: {reason}"], rule=rule)


def _in_hours(now_ms: int, th: TradingHoursRule) -> bool:
    t = dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.UTC)
    if t.weekday() not in th.weekdays:
        return False
    start, end = th.minutes()
    minute = t.hour * 60 + t.minute
    if start == end:
        return True
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end  # wraps midnight
