"""What a trial is worth: the objective, the constraints, and the overfitting measure (deflated Sharpe ratio).

Why constraints prune instead of scoring badly: a trial with too few trades or too deep a drawdown has no
meaningful score, and a made-up "bad" number would mislead TPE's model of the space; Optuna's PRUNED state
keeps the trial (counted, reported with its reason) without a value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

OBJECTIVES = ("sharpe", "sortino", "calmar", "profit", "profit_factor")
EULER_GAMMA = 0.5772156649015329
_N = NormalDist()


def score(metrics: Mapping[str, Any], objective: str) -> float | None:
    """The objective's value from a backtest's metrics (higher is better); None when undefined (no trades,
    a flat series, a profit factor without a loss)."""
    if objective == "profit":
        return float(metrics["net_pnl"])
    value = metrics.get(objective)
    return None if value is None else float(value)


def constraint_failure(metrics: Mapping[str, Any], min_trades: int, max_drawdown: float | None) -> str | None:
    """Why the trial fails the constraints, or None. `max_drawdown` as a fraction (0.2 = 20 %)."""
    closed = int(metrics.get("closed_trades") or 0)
    if closed < min_trades:
        return f"{closed} closed trades < --min-trades {min_trades}"
    dd = metrics.get("max_drawdown")
    if max_drawdown is not None and dd is not None and float(dd) > max_drawdown:
        return f"max drawdown {float(dd):.2%} > --max-drawdown {max_drawdown:.2%}"
    return None


def expected_max_sharpe(variance: float, n_trials: int) -> float:
    """E[max Sharpe] of `n_trials` independent zero-skill trials whose Sharpe ratios have `variance`
    (Bailey & Lopez de Prado 2014, the False Strategy theorem)."""
    if n_trials < 2 or variance <= 0:
        return 0.0
    a = _N.inv_cdf(1 - 1 / n_trials)
    b = _N.inv_cdf(1 - 1 / (n_trials * math.e))
    return math.sqrt(variance) * ((1 - EULER_GAMMA) * a + EULER_GAMMA * b)


def deflated_sharpe(returns: Sequence[float], trial_sharpes: Sequence[float]) -> float | None:
    """Probability that the chosen strategy's true (per-period) Sharpe exceeds what the best of this many
    trials would show by luck alone. `returns`: the chosen trial's daily returns; `trial_sharpes`: every
    trial's per-period (daily, NOT annualised) Sharpe. Near 1: the edge survives the multiple testing;
    near or below 0.5: it is what searching alone would find. None when undefined (too few returns)."""
    finite = [s for s in trial_sharpes if s is not None and math.isfinite(s)]
    n = len(finite)
    tv = sum((s - sum(finite) / n) ** 2 for s in finite) / (n - 1) if n >= 2 else 0.0
    return deflated_sharpe_nv(returns, n, tv)


def deflated_sharpe_nv(returns: Sequence[float], n: int, tv: float) -> float | None:
    """deflated_sharpe from the trials' count `n` and Sharpe variance `tv` (streamed, trials.sharpe_stats)."""
    t = len(returns)
    if t < 3:
        return None
    mean = sum(returns) / t
    var = sum((r - mean) ** 2 for r in returns) / (t - 1)
    if var <= 0:
        return None
    sd = math.sqrt(var)
    sr = mean / sd
    m3 = sum((r - mean) ** 3 for r in returns) / t
    m4 = sum((r - mean) ** 4 for r in returns) / t
    pop_var = var * (t - 1) / t
    skew = m3 / pop_var**1.5 if pop_var > 0 else 0.0
    kurt = m4 / pop_var**2 if pop_var > 0 else 3.0
    sr0 = expected_max_sharpe(tv, n)
    denom = 1 - skew * sr + (kurt - 1) / 4 * sr**2
    if denom <= 0:
        return None
    return _N.cdf((sr - sr0) * math.sqrt(t - 1) / math.sqrt(denom))
