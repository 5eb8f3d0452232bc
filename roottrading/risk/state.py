"""The facts the risk rules are judged on, and the small in-memory tracker that keeps them up to date.

`RiskState` is an immutable snapshot: the engine is a pure function of (intent, state, rules), which is what
makes every rule testable without a bus or a database. `StateTracker` is fed by the risk service from the
bus (cycle updates, balances, candles, order requests) and the store (open cycles and today's closed ones at
start), and knows nothing about I/O itself.

Locks: a breach that pauses new entries or disables a strategy becomes a `Lock` with an `until` in market
time (the platform clock, simulated in demo/backtest); `expire(now)` lifts the automatic ones whose time has
come and re-arms their rule (streak from zero, daily loss and drawdown counted from that moment), so the same
old losses do not lock again at once. A user's own disable and the kill switch have no `until`: only a
manual enable / resume lifts them.

Durability: `to_doc()` / `restore()` carry what the store of cycles cannot rebuild (the locks with their
original `until`, the equity peak, the day's start and baseline, the loss streaks as re-armed) across a
restart; the risk service stores the document before it announces the change it records.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from roottrading.domain import Candle, CycleStatus, TradeCycle

MAX_COUNTED = 100_000  # closed cycles remembered by id (memory stays bounded over months)

DAY_MS = 86_400_000
MINUTE_MS = 60_000
MANUAL = "manual"  # the rule name of a lock set by a user (API / dashboard)


@dataclass(frozen=True)
class Lock:
    """`strategy` locked (every new entry when None) by `rule`, as `action` (pause | disable_strategy |
    kill_switch), since `since_ms` until `until_ms` (epoch ms, market time; None: until a manual resume or
    enable)."""

    rule: str
    action: str
    reason: str
    since_ms: int
    until_ms: int | None
    strategy: str | None = None

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.strategy, self.rule)

    @property
    def automatic(self) -> bool:
        """Lifted by time. Never true for a manual lock or a kill switch."""
        return self.until_ms is not None

    def active(self, now_ms: int) -> bool:
        return self.until_ms is None or now_ms < self.until_ms


@dataclass(frozen=True)
class Position:
    cycle_id: str
    symbol: str
    strategy: str
    notional: Decimal  # quantity * entry price, in the quote asset


@dataclass(frozen=True)
class RiskState:
    now_ms: int
    equity: Decimal
    equity_peak: Decimal
    day_start_equity: Decimal
    realised_pnl_today: Decimal
    positions: tuple[Position, ...] = ()
    recent_order_times: tuple[int, ...] = ()
    atr_pct: dict[str, Decimal] = field(default_factory=dict)
    loss_streaks: dict[str, int] = field(default_factory=dict)
    paused: bool = False
    pause_reason: str = ""
    killed: bool = False
    disabled_strategies: frozenset[str] = frozenset()
    locks: tuple[Lock, ...] = ()
    daily_pnl_baseline: Decimal = Decimal(0)  # realised PnL today at the last resume: the loss counts from it

    def lock_for(self, strategy: str | None) -> Lock | None:
        """The lock that blocks `strategy` (None: the one that blocks every entry), kill switch and manual
        first, then the one that lasts longest."""
        found = [lk for lk in self.locks if lk.strategy == strategy]
        if not found:
            return None
        return min(found, key=lambda lk: (lk.action != "kill_switch", lk.automatic, -(lk.until_ms or 0)))

    def exposure(self, symbol: str | None = None) -> Decimal:
        return sum((p.notional for p in self.positions if symbol is None or p.symbol == symbol), Decimal(0))

    def orders_last_minute(self) -> int:
        return sum(1 for t in self.recent_order_times if t > self.now_ms - MINUTE_MS)

    @property
    def drawdown_pct(self) -> Decimal:
        if self.equity_peak <= 0:
            return Decimal(0)
        return max(Decimal(0), (self.equity_peak - self.equity) / self.equity_peak * 100)

    @property
    def daily_loss_pct(self) -> Decimal:
        """Realised loss today as a positive % of the day's starting equity (0 when the day is positive)."""
        pnl = self.realised_pnl_today - self.daily_pnl_baseline
        if self.day_start_equity <= 0 or pnl >= 0:
            return Decimal(0)
        return -pnl / self.day_start_equity * 100


class _Atr:
    """Wilder's ATR over closed candles (float64, as every indicator), the % of the last close exposed."""

    def __init__(self, period: int) -> None:
        self.period = period
        self.prev_close: float | None = None
        self.trs: list[float] = []
        self.atr: float | None = None
        self.last_open = -1
        self.last_close = 0.0

    def update(self, c: Candle) -> None:
        if not c.closed or c.open_time <= self.last_open:
            return
        self.last_open = c.open_time
        tr = (
            c.high - c.low
            if self.prev_close is None
            else max(c.high - c.low, abs(c.high - self.prev_close), abs(c.low - self.prev_close))
        )
        self.prev_close, self.last_close = c.close, c.close
        if self.atr is None:
            self.trs.append(tr)
            if len(self.trs) >= self.period:
                self.atr = sum(self.trs) / self.period
        else:
            self.atr = (self.atr * (self.period - 1) + tr) / self.period

    def pct(self) -> Decimal | None:
        if self.atr is None or self.last_close <= 0:
            return None
        return Decimal(repr(round(self.atr / self.last_close * 100, 6)))


class StateTracker:
    """Mutable aggregate behind `snapshot()`. Equity comes from balance updates when a portfolio publishes
    them; otherwise it is the configured starting equity plus realised PnL seen on closed cycles."""

    def __init__(self, initial_equity: Decimal, now_ms: int, atr_period: int = 14) -> None:
        self.initial_equity = initial_equity
        self.reported_equity: Decimal | None = None
        # the last reported equity of before a restart (restore()): the equity until a report comes, so that a
        # restored peak is never compared with the configured starting equity (a false drawdown pause)
        self.restored_equity: Decimal | None = None
        self.realised_total = Decimal(0)
        self.equity_peak = initial_equity
        self.day = now_ms // DAY_MS
        self.day_start_equity = initial_equity
        self.realised_today = Decimal(0)
        self.positions: dict[str, Position] = {}
        # closed cycles already in the totals: id -> close time, the oldest forgotten past MAX_COUNTED; a close
        # at or before `counted_horizon` is one that was forgotten, so it is never added twice
        self.counted: OrderedDict[str, int] = OrderedDict()
        self.counted_horizon = -1
        self.loss_streaks: dict[str, int] = {}
        self.orders: deque[tuple[int, str]] = deque()
        self.order_ids: set[str] = set()
        self.atr_period = atr_period
        self.atr: dict[str, _Atr] = {}
        self.daily_pnl_baseline = Decimal(0)
        self.locks: dict[tuple[str | None, str], Lock] = {}
        # restored from the store (restore()): cycles closed at or before `restored_as_of` are already in the
        # streaks and the peak, so replaying them at start only rebuilds totals and positions
        self.restored_as_of = -1
        self.last_counted_ms = -1
        self.peak_restored = False  # the peak came from reported equity: the first report must not reset it
        self.day_restored = False

    @property
    def equity(self) -> Decimal:
        if self.reported_equity is not None:
            return self.reported_equity
        if self.restored_equity is not None:
            return self.restored_equity
        return self.initial_equity + self.realised_total

    def _roll_day(self, now_ms: int) -> None:
        day = now_ms // DAY_MS
        if day > self.day:
            self.day, self.realised_today, self.day_start_equity = day, Decimal(0), self.equity
            self.daily_pnl_baseline = Decimal(0)

    def on_cycle(self, c: TradeCycle, now_ms: int) -> None:
        self._roll_day(now_ms)
        if not c.status.is_terminal:
            price = c.entry_price or Decimal(0)
            self.positions[c.id] = Position(c.id, c.symbol, c.strategy, c.quantity * price)
            return
        self.positions.pop(c.id, None)
        if c.status is not CycleStatus.COMPLETED or c.profit_loss is None or c.id in self.counted:
            return
        if c.updated_at <= self.counted_horizon:
            return
        self.counted[c.id] = c.updated_at
        if len(self.counted) > MAX_COUNTED:
            _, t = self.counted.popitem(last=False)
            self.counted_horizon = max(self.counted_horizon, t)
        self.realised_total += c.profit_loss
        if c.updated_at // DAY_MS == self.day:
            self.realised_today += c.profit_loss
        self.last_counted_ms = max(self.last_counted_ms, c.updated_at)
        if c.updated_at <= self.restored_as_of:
            return  # already in the restored streaks and peak (a re-armed rule must not trip again)
        if c.profit_loss < 0:
            self.loss_streaks[c.strategy] = self.loss_streaks.get(c.strategy, 0) + 1
        else:
            self.loss_streaks[c.strategy] = 0
        self.equity_peak = max(self.equity_peak, self.equity)

    def on_equity(self, total_value: Decimal, now_ms: int) -> None:
        self._roll_day(now_ms)
        if self.reported_equity is None:
            if not self.day_restored:
                self.day_start_equity = total_value if self.realised_today == 0 else self.day_start_equity
            if not self.peak_restored:
                self.equity_peak = total_value
        self.reported_equity = total_value
        self.equity_peak = max(self.equity_peak, total_value)

    def on_candle(self, c: Candle) -> None:
        a = self.atr.get(c.symbol)
        if a is None:
            a = self.atr[c.symbol] = _Atr(self.atr_period)
        a.update(c)

    def on_order(self, order_id: str, time_ms: int) -> None:
        """An order sent (or approved): counted once per id for the orders-per-minute rule."""
        if order_id in self.order_ids:
            return
        self.order_ids.add(order_id)
        self.orders.append((time_ms, order_id))
        while self.orders and self.orders[0][0] <= time_ms - 10 * 60_000:
            _, old = self.orders.popleft()
            self.order_ids.discard(old)

    # --- locks --------------------------------------------------------------------------------------
    @property
    def killed(self) -> bool:
        return any(lk.action == "kill_switch" for lk in self.locks.values())

    @property
    def paused(self) -> bool:
        return any(lk.strategy is None for lk in self.locks.values())

    @property
    def pause_reason(self) -> str:
        lk = self._view(0).lock_for(None)
        return lk.reason if lk else ""

    @property
    def disabled(self) -> frozenset[str]:
        return frozenset(lk.strategy for lk in self.locks.values() if lk.strategy is not None)

    def _view(self, now_ms: int) -> RiskState:
        return RiskState(now_ms, Decimal(0), Decimal(0), Decimal(0), Decimal(0), locks=tuple(self.locks.values()))

    def lock(self, lk: Lock) -> bool:
        """Add a lock; False (and nothing changed) when that rule already locks that scope."""
        if lk.key in self.locks:
            return False
        self.locks[lk.key] = lk
        return True

    def pause(self, rule: str, reason: str, now_ms: int = 0, until_ms: int | None = None) -> bool:
        return self.lock(Lock(rule, "pause", reason, now_ms, until_ms))

    def locks_on(self, strategy: str | None) -> list[Lock]:
        """The locks on `strategy` (None: on every new entry)."""
        return [lk for lk in self.locks.values() if lk.strategy == strategy]

    def expire(self, now_ms: int) -> list[Lock]:
        """Lift every automatic lock whose `until` has come (market time) and re-arm its rule."""
        done = [lk for lk in self.locks.values() if not lk.active(now_ms)]
        for lk in done:
            del self.locks[lk.key]
            self._rearm(lk.rule, lk.strategy)
        return done

    def _rearm(self, rule: str, strategy: str | None) -> None:
        """Count the rule afresh from now, so the losses that tripped it do not trip it again at once."""
        if rule == "strategy_loss_streak":
            for s in [strategy] if strategy else list(self.loss_streaks):
                self.loss_streaks[s] = 0
        elif rule == "daily_loss_limit":
            self.daily_pnl_baseline = self.realised_today
        elif rule == "max_drawdown":
            self.equity_peak = self.equity

    def resume(self) -> list[Lock]:
        """The user's resume: lifts the pause, the kill switch and every automatic strategy lock, and re-arms
        every rule; a strategy the user disabled stays disabled (its own enable lifts it)."""
        lifted = [lk for lk in self.locks.values() if not (lk.strategy is not None and lk.rule == MANUAL)]
        for lk in lifted:
            del self.locks[lk.key]
        for rule in ("strategy_loss_streak", "daily_loss_limit", "max_drawdown"):
            self._rearm(rule, None)
        return lifted

    def reset_strategy(self, strategy: str) -> None:
        """The user's enable: every lock on the strategy goes, manual or automatic, and its streak restarts."""
        for key in [k for k in self.locks if k[0] == strategy]:
            del self.locks[key]
        self.loss_streaks[strategy] = 0

    # --- durability ---------------------------------------------------------------------------------
    def to_doc(self) -> dict[str, Any]:
        """What a restart must not lose, as JSON (Decimals as text)."""
        return {
            "version": 1,
            "locks": [
                {
                    "rule": lk.rule,
                    "action": lk.action,
                    "reason": lk.reason,
                    "since": lk.since_ms,
                    "until": lk.until_ms,
                    "strategy": lk.strategy,
                }
                for lk in self.locks.values()
            ],
            "equity_peak": str(self.equity_peak),
            "peak_from_report": self.reported_equity is not None or self.peak_restored,
            "equity": None if (eq := self.reported_equity or self.restored_equity) is None else str(eq),
            "day": self.day,
            "day_start_equity": str(self.day_start_equity),
            "daily_pnl_baseline": str(self.daily_pnl_baseline),
            "loss_streaks": dict(sorted(self.loss_streaks.items())),
            "as_of": max(self.last_counted_ms, self.restored_as_of),
        }

    def restore(self, doc: dict[str, Any], now_ms: int) -> None:
        """Take back a stored `to_doc()` BEFORE the cycles are replayed: locks keep their original `until`,
        the peak its value (drawdown does not restart from zero), today's start and baseline stay when the
        day has not changed, and the streaks stay as they were (re-armed ones included)."""
        for x in doc.get("locks", []):
            lk = Lock(x["rule"], x["action"], x["reason"], int(x["since"]), x["until"], x["strategy"])
            self.locks[lk.key] = lk
        self.equity_peak = Decimal(doc["equity_peak"])
        self.peak_restored = bool(doc.get("peak_from_report"))
        if doc.get("equity") is not None:
            self.restored_equity = Decimal(doc["equity"])
        if int(doc["day"]) == now_ms // DAY_MS:
            self.day = int(doc["day"])
            self.day_start_equity = Decimal(doc["day_start_equity"])
            self.daily_pnl_baseline = Decimal(doc["daily_pnl_baseline"])
            self.day_restored = True
        self.loss_streaks = {str(k): int(v) for k, v in doc.get("loss_streaks", {}).items()}
        self.restored_as_of = int(doc.get("as_of", -1))

    def snapshot(self, now_ms: int) -> RiskState:
        self._roll_day(now_ms)
        atr = {s: p for s, a in self.atr.items() if (p := a.pct()) is not None}
        locks = tuple(lk for lk in self.locks.values() if lk.active(now_ms))  # an expired one no longer binds
        view = RiskState(now_ms, Decimal(0), Decimal(0), Decimal(0), Decimal(0), locks=locks)
        return RiskState(
            now_ms=now_ms,
            equity=self.equity,
            equity_peak=max(self.equity_peak, self.equity),
            day_start_equity=self.day_start_equity,
            realised_pnl_today=self.realised_today,
            positions=tuple(self.positions.values()),
            recent_order_times=tuple(t for t, _ in self.orders),
            atr_pct=atr,
            loss_streaks=dict(self.loss_streaks),
            paused=any(lk.strategy is None for lk in locks),
            pause_reason=(g.reason if (g := view.lock_for(None)) else ""),
            killed=any(lk.action == "kill_switch" for lk in locks),
            disabled_strategies=frozenset(lk.strategy for lk in locks if lk.strategy is not None),
            locks=locks,
            daily_pnl_baseline=self.daily_pnl_baseline,
        )
