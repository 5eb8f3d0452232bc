"""Performance metrics as pure functions over plain float sequences (statistics, not the order path).

Conventions (the dashboard, the PnL service, the portfolio service and `roottrading report` all use these):

- Trade metrics (win rate, profit factor, expectancy) take the list of *per-cycle net PnL in the quote
  asset, fees included*. A cycle with PnL exactly 0 is not a win (and not a loss for profit factor).
- Return metrics (Sharpe, Sortino) take *daily equity returns*: r_t = E_t / E_{t-1} - 1 over consecutive
  UTC calendar days, including days without trades (their return is 0). Crypto trades every day, so the
  annualisation factor is sqrt(365). The risk-free rate is 0. Sample standard deviation (ddof=1).
- Sortino's downside deviation is sqrt(mean(min(r_t, 0)^2)) over *all* periods (target return 0).
- Max drawdown is the largest fall from a running peak of the equity curve, as a positive fraction
  (0.25 = -25 %). Calmar = annualised return (CAGR over the curve's span in days / 365) / max drawdown.
- A metric that is undefined for the input (no trades, a flat series, no losses) returns None,
  except profit factor with profits and no loss, which is +inf (JSON layers turn it into None).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

DAYS_PER_YEAR = 365


def total_return(equity: Sequence[float]) -> float | None:
    """Last equity over first, minus one."""
    if len(equity) < 2 or equity[0] <= 0:
        return None
    return equity[-1] / equity[0] - 1.0


def win_rate(pnls: Sequence[float]) -> float | None:
    if not pnls:
        return None
    return sum(1 for p in pnls if p > 0) / len(pnls)


def profit_factor(pnls: Sequence[float]) -> float | None:
    """Gross profit / gross loss."""
    gains = sum(p for p in pnls if p > 0)
    losses = -sum(p for p in pnls if p < 0)
    if losses == 0:
        return math.inf if gains > 0 else None
    return gains / losses


def expectancy(pnls: Sequence[float]) -> float | None:
    """Average net PnL per cycle (quote asset)."""
    return sum(pnls) / len(pnls) if pnls else None


def returns_from_equity(equity: Sequence[float]) -> list[float]:
    return [equity[i] / equity[i - 1] - 1.0 for i in range(1, len(equity)) if equity[i - 1] > 0]


def sharpe(returns: Sequence[float], periods_per_year: int = DAYS_PER_YEAR) -> float | None:
    if len(returns) < 2:
        return None
    mean = sum(returns) / len(returns)
    var = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    if var <= 0:
        return None
    return mean / math.sqrt(var) * math.sqrt(periods_per_year)


def sortino(returns: Sequence[float], periods_per_year: int = DAYS_PER_YEAR) -> float | None:
    if len(returns) < 2:
        return None
    mean = sum(returns) / len(returns)
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    if downside == 0:
        return None
    return mean / downside * math.sqrt(periods_per_year)


def max_drawdown(equity: Sequence[float]) -> float:
    peak, worst = -math.inf, 0.0
    for e in equity:
        peak = max(peak, e)
        if peak > 0:
            worst = max(worst, (peak - e) / peak)
    return worst


def cagr(equity: Sequence[float], days: float) -> float | None:
    if len(equity) < 2 or equity[0] <= 0 or days <= 0 or equity[-1] <= 0:
        return None
    growth: float = (equity[-1] / equity[0]) ** (DAYS_PER_YEAR / days)  # both positive: a real power
    return growth - 1.0


def calmar(equity: Sequence[float], days: float) -> float | None:
    dd = max_drawdown(equity)
    growth = cagr(equity, days)
    if growth is None or dd == 0:
        return None
    return growth / dd


def summary(pnls: Sequence[float], daily_equity: Sequence[float]) -> dict[str, float | int | None]:
    """Every metric at once. `daily_equity` is one value per UTC day (oldest first)."""
    rets = returns_from_equity(daily_equity)
    pf = profit_factor(pnls)
    return {
        "cycles": len(pnls),
        "wins": sum(1 for p in pnls if p > 0),
        "losses": sum(1 for p in pnls if p < 0),
        "total_return": total_return(daily_equity),
        "win_rate": win_rate(pnls),
        "profit_factor": None if pf is None or math.isinf(pf) else pf,
        "expectancy": expectancy(pnls),
        "sharpe": sharpe(rets),
        "sortino": sortino(rets),
        "max_drawdown": max_drawdown(daily_equity),
        "calmar": calmar(daily_equity, max(len(daily_equity) - 1, 0)),
    }
