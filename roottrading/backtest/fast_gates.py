"""The `fast` engine's risk gates: what the risk manager and coordinator could refuse, checked per entry.

Why apart from fast.py: one job (the simulation loop lives there). FastRun mixes this in; the state it reads
(rules, the account's lowest and highest values, the loss-streak lock) is FastRun's, declared below. See
fast.py's docstring for what is modelled exactly (the loss-streak lock, the risk manager's size caps) and what
is only checked with a margin (volatility, drawdown, daily loss, pocket): the first entry where one of those
could have acted raises EngineUnavailable, so a fast result is never a silently different answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from roottrading.backtest.model import BacktestConfig, EngineUnavailable
from roottrading.domain import Side, Signal, TradeCycle
from roottrading.domain.money import to_decimal
from roottrading.services.trader.position import position

MARGIN = Decimal("0.8")  # a rule counts as "could not have acted" only below 80 % of its limit
Q8 = Decimal("0.00000001")


@dataclass
class OpenCycle:
    """The cycle being simulated: the trader's TradeCycle, its entry candle and its fills so far."""

    cycle: TradeCycle
    index: int  # candle of the entry
    fills: list[Any] = field(default_factory=list)


class RiskGates:
    """Mixed into FastRun (fast.py), whose state these are."""

    config: BacktestConfig
    name: str
    symbol: str
    base: str
    quote: str
    series: list[Any]
    h: np.ndarray
    lo: np.ndarray
    c: np.ndarray
    rules: Any
    rules_set: Any
    engine: Any
    atr_pct: np.ndarray
    reported: Decimal
    equity_low: Decimal
    peak: Decimal
    day_high: dict[int, Decimal]
    day_low: dict[int, Decimal]
    daily_breach: bool
    streak: int
    locked: bool
    lock_until: int | None
    fed: int
    step_time: int

    _quote_total: Callable[[], Decimal]  # FastRun's (an annotation only: nothing to shadow it in the MRO)

    def _atr_pct(self) -> np.ndarray:
        from roottrading.backtest.kernels import wilder_atr_pct

        return wilder_atr_pct(self.h, self.lo, self.c, int(self.rules_set.volatility.atr_period))

    def _check_risk(self, i: int, price: Decimal) -> None:
        """Gates that refuse entries: raise when one could have acted (see the module docstring)."""
        r = self.rules_set
        if r.volatility.enabled:
            a = self.atr_pct[i]
            if a == a and Decimal(repr(float(a))) >= r.volatility.max_atr_pct * MARGIN:
                raise EngineUnavailable(f"risk.volatility could act at candle {i} (not modelled)")
        value_low = self.equity_low
        if r.max_drawdown.enabled and (self.peak - value_low) >= self.peak * r.max_drawdown.limit_pct / 100 * MARGIN:
            raise EngineUnavailable(f"risk.max_drawdown could act before candle {i} (not modelled)")
        if r.daily_loss_limit.enabled and self.daily_breach:
            raise EngineUnavailable(f"risk.daily_loss_limit could act before candle {i} (not modelled)")

    def _locked(self, now: int) -> bool:
        """The loss-streak lock as the risk service keeps it (risk/state.py, services/risk/service.py): set when
        a completed cycle makes the streak reach the limit, at that time step's market time, until that time
        plus the rule's cooldown (none: for good); an entry checked at or after `until` lifts it and counts the
        streak from 0 again (the tracker's expire/_rearm). Refused entries change nothing else in the replay
        (no coordinator cooldown, no order counted), so returning "no entry" here is the same outcome."""
        if not self.locked:
            return False
        if self.lock_until is not None and now >= self.lock_until:
            self.locked, self.lock_until, self.streak = False, None, 0
            return False
        return True

    def _risk_shrink(self, i: int, s: Signal, price: Decimal, qty: Decimal, pocket_capped: bool) -> Decimal | None:
        """Risk sizing: the risk manager's own size caps (RiskEngine._size) on the exact state it has when no
        cycle is open (its equity: the same balances report the coordinator sized from; no positions), then the
        coordinator's rounding and min-notional check after a shrink. When the pocket capped the size computed
        from a lower bound of the pocket, the result is still exact if the risk cap is below that size (the
        true size, at least as large, is shrunk to the same cap); otherwise the run falls back."""
        from roottrading.risk import OrderIntent
        from roottrading.risk.engine import RiskEngine
        from roottrading.risk.rules import RiskRules
        from roottrading.risk.state import RiskState

        st = RiskState(
            now_ms=self.series[i].close_time,
            equity=self.reported,
            equity_peak=self.reported,
            day_start_equity=self.reported,
            realised_pnl_today=Decimal(0),
        )
        intent = OrderIntent(
            id="fast", symbol=self.symbol, side=Side.BUY, quantity=qty, price=price, strategy=self.name, time=s.time
        )
        verdict = RiskEngine(RiskRules(rules=self.rules_set))._size(intent, st)
        if not verdict.allowed:
            raise EngineUnavailable(f"a risk size cap refuses the entry at candle {i} (not modelled)")
        if pocket_capped and not verdict.quantity < qty:
            raise EngineUnavailable(f"the pocket limit could bind at candle {i} (not modelled)")
        if verdict.quantity < qty:
            qty = self.rules.round_quantity(verdict.quantity)
            if qty * price < Decimal(self.rules.min_notional):
                return None  # the coordinator refuses: risk shrank the order below min notional
        return qty

    def _after_close(self, cur: OpenCycle) -> None:
        """Track what the conservative risk checks need: loss streak, lowest/highest account values."""
        pnl = cur.cycle.profit_loss or Decimal(0)
        self.streak = self.streak + 1 if pnl < 0 else 0
        rule = self.rules_set.strategy_loss_streak
        if rule.enabled and not self.locked and self.streak >= rule.max_consecutive_losses:
            # the risk service locks on the cycle update, at the time step's market time (the fills' time)
            cooldown = self.rules_set.cooldown_ms("strategy_loss_streak")
            self.locked = True
            self.lock_until = None if cooldown is None else self.step_time + cooldown
        # lowest account value while the cycle was open: its held quantity at the lowest low
        held = position(cur.fills, self.base).net_bought
        lo = float(np.min(self.lo[cur.index : self.fed + 1])) if self.fed >= cur.index else float(self.lo[cur.index])
        spent = sum((x.quote_quantity for x in cur.fills if x.side is Side.BUY), Decimal(0))
        quote_now = self._quote_total()
        sold_quote = sum((x.quote_quantity for x in cur.fills if x.side is Side.SELL), Decimal(0))
        # quote before the sells = now - sells' proceeds (fees in quote are small: counted as held value)
        quote_during = quote_now - sold_quote
        low_value = quote_during + held * to_decimal(lo)
        hi = float(np.max(self.h[cur.index : self.fed + 1]))
        high_value = quote_during + held * to_decimal(hi)
        self.equity_low = min(self.equity_low, low_value, quote_now)
        self.peak = max(self.peak, high_value, quote_now)
        d0 = self.series[cur.index].open_time // 86_400_000
        d1 = self.series[self.fed].close_time // 86_400_000
        limit = self.rules_set.daily_loss_limit.limit_pct
        for d in range(d0, d1 + 1):
            high = self.day_high[d] = max(self.day_high.get(d, high_value), high_value, spent * 0 + quote_now)
            low = self.day_low[d] = min(self.day_low.get(d, low_value), low_value)
            # a day's high only rises and its low only falls, so once (high - low) reaches the margin it stays
            # there: checking the days touched here, once, is checking every day at every entry
            if high - low >= high * limit / 100 * MARGIN:
                self.daily_breach = True
