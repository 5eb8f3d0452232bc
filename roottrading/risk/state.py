"""The facts the risk rules are judged on, and the small in-memory tracker that keeps them up to date.

`RiskState` is an immutable snapshot: the engine is a pure function of (intent, state, rules), which is what
makes every rule testable without a bus or a database. `StateTracker` is fed by the risk service from the
bus (cycle updates, balances, candles, order requests) and the store (open cycles and today's closed ones at
start), and knows nothing about I/O itself.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from decimal import Decimal

from roottrading.domain import Candle, CycleStatus, TradeCycle

MAX_COUNTED = 100_000  # closed cycles remembered by id (memory stays bounded over months)

DAY_MS = 86_400_000
MINUTE_MS = 60_000


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
        if self.day_start_equity <= 0 or self.realised_pnl_today >= 0:
            return Decimal(0)
        return -self.realised_pnl_today / self.day_start_equity * 100


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
        self.paused = False
        self.pause_reason = ""
        self.pause_rule = ""
        self.killed = False
        self.disabled: set[str] = set()

    @property
    def equity(self) -> Decimal:
        if self.reported_equity is not None:
            return self.reported_equity
        return self.initial_equity + self.realised_total

    def _roll_day(self, now_ms: int) -> None:
        day = now_ms // DAY_MS
        if day > self.day:
            self.day, self.realised_today, self.day_start_equity = day, Decimal(0), self.equity
            if self.paused and self.pause_rule == "daily_loss_limit":
                self.resume()

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
        if c.profit_loss < 0:
            self.loss_streaks[c.strategy] = self.loss_streaks.get(c.strategy, 0) + 1
        else:
            self.loss_streaks[c.strategy] = 0
        self.equity_peak = max(self.equity_peak, self.equity)

    def on_equity(self, total_value: Decimal, now_ms: int) -> None:
        self._roll_day(now_ms)
        if self.reported_equity is None:
            self.day_start_equity = total_value if self.realised_today == 0 else self.day_start_equity
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

    def pause(self, rule: str, reason: str) -> None:
        self.paused, self.pause_rule, self.pause_reason = True, rule, reason

    def resume(self) -> None:
        self.paused, self.pause_rule, self.pause_reason, self.killed = False, "", "", False

    def reset_strategy(self, strategy: str) -> None:
        self.disabled.discard(strategy)
        self.loss_streaks[strategy] = 0

    def snapshot(self, now_ms: int) -> RiskState:
        self._roll_day(now_ms)
        atr = {s: p for s, a in self.atr.items() if (p := a.pct()) is not None}
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
            paused=self.paused,
            pause_reason=self.pause_reason,
            killed=self.killed,
            disabled_strategies=frozenset(self.disabled),
        )
