"""A backtest's metrics: the PnL tracker's own functions (capital/metrics.py) on the run's trades and equity,
plus buy-and-hold over the same candles beside them. Shared by every engine, so a parity test that compares
two results compares the same numbers.

Conventions (as capital/metrics.py): trade metrics over closed trades' net PnL (fees included); Sharpe and
Sortino over DAILY returns of the marked account value (last value of each UTC day); max drawdown over the
full-resolution equity curve (every candle: a drawdown inside a day is still a drawdown); Calmar = CAGR over
the run's span / that drawdown. Money as plain strings, ratios as floats rounded to 6 places, None when
undefined (no trades, flat series, no loss for profit factor).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np

from roottrading.backtest.model import BacktestConfig, Trade
from roottrading.capital import metrics as cm
from roottrading.domain import Candle
from roottrading.domain.money import plain_text

DAY_MS = 86_400_000


def _num(v: float | int | None) -> float | int | None:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return None
    return round(v, 6) if isinstance(v, float) else v


def daily_values(equity: Sequence[tuple[int, float]], start_value: float) -> list[float]:
    """The starting value, then the last equity value of each UTC day (days without a candle repeat).
    `equity` in time order. Vectorised (a million-candle run): the same values as a loop over the points."""
    if not equity:
        return [start_value]
    return _daily(*_columns(equity), start_value)


def _daily(t: np.ndarray, v: np.ndarray, start_value: float) -> list[float]:
    """daily_values on the curve's columns (non-empty)."""
    days = t // DAY_MS
    wanted = np.arange(days[0], days[-1] + 1)
    last = np.searchsorted(days, wanted, side="right") - 1  # each day's last point (or the previous day's)
    return [start_value, *v[last].tolist()]


def _columns(equity: Sequence[tuple[int, float]]) -> tuple[np.ndarray, np.ndarray]:
    t = np.fromiter((p[0] for p in equity), np.int64, len(equity))
    v = np.fromiter((p[1] for p in equity), np.float64, len(equity))
    return t, v


def _ends(values: np.ndarray) -> list[float]:
    """What capital.metrics.cagr reads of a curve (its length >= 2, first and last), as Python floats."""
    return [float(values[0]), float(values[-1])] if len(values) >= 2 else values.tolist()


def max_drawdown(values: Sequence[float] | np.ndarray) -> float:
    """capital.metrics.max_drawdown, vectorised: the same IEEE operations per point (running peak, then
    (peak - value) / peak where the peak is positive), so the same float."""
    e = np.asarray(values, np.float64)
    if not len(e):
        return 0.0
    peak = np.maximum.accumulate(e)
    ok = peak > 0
    if not ok.any():
        return 0.0
    return max(0.0, float(((peak[ok] - e[ok]) / peak[ok]).max()))


def trade_table(trades: Sequence[Trade], key: str) -> list[dict[str, Any]]:
    """Per strategy / symbol totals over the trades (open ones counted in `open`, marked in `pnl`)."""
    groups: dict[str, list[Trade]] = {}
    for t in trades:
        groups.setdefault(getattr(t, key), []).append(t)
    out = []
    for k in sorted(groups):
        g = groups[k]
        closed = [float(t.pnl) for t in g if t.exit_time is not None]
        pf = cm.profit_factor(closed)
        out.append(
            {
                key: k,
                "trades": len(g),
                "open": sum(1 for t in g if t.exit_time is None),
                "wins": sum(1 for p in closed if p > 0),
                "losses": sum(1 for p in closed if p < 0),
                "win_rate": _num(cm.win_rate(closed)),
                "profit_factor": _num(pf),
                "pnl": plain_text(sum((t.pnl for t in g), Decimal(0))),
                "fees": plain_text(sum((t.fees for t in g), Decimal(0))),
            }
        )
    return out


def exposure(trades: Sequence[Trade], times: Sequence[int] | np.ndarray) -> float | None:
    """Share of the candle times (equity points, in time order) at which at least one trade was open: entered
    at or before the time and not yet exited (a trade open at the end counts to the end). From the trades, not
    from the account's balances: the dust left below the step size after a sale is not a position."""
    if not len(times):
        return None
    ts = np.asarray(times, np.int64)
    spans = sorted((t.entry_time, t.exit_time if t.exit_time is not None else int(ts[-1]) + 1) for t in trades)
    if not spans:
        return 0.0
    entries = np.array([a for a, _ in spans], np.int64)
    until = np.maximum.accumulate(np.array([b for _, b in spans], np.int64))  # latest exit among those entered
    j = np.searchsorted(entries, ts, side="right")
    active = np.where(j > 0, until[np.maximum(j - 1, 0)], -1)
    return int(np.count_nonzero(ts < active)) / len(ts)


# buy_and_hold of the last candle sets seen: an optimisation runs hundreds of backtests on the same candles, and
# on a year of 1m candles this benchmark alone took a third of each trial. Keyed by the lists' identity and
# length; the entry holds the lists, so an identity cannot be reused by other lists while it is cached.
_BH_MEMO: list[tuple[tuple[Any, ...], list[Any], tuple[dict[str, Any], list[tuple[int, float]]]]] = []


def buy_and_hold(
    candles: Mapping[str, Sequence[Candle]], balance: Decimal, taker_fee: Decimal
) -> tuple[dict[str, Any], list[tuple[int, float]]]:
    """The balance split equally over the symbols, bought at the first candle's open and held (a taker fee on
    the buy and on the final sale). Returns its metrics and its equity curve (one point per close time; shared
    with later calls on the same candles: read it, do not change it)."""
    key = (tuple((s, id(c), len(c)) for s, c in candles.items()), balance, taker_fee)
    for k, _held, (metrics, curve) in _BH_MEMO:
        if k == key:
            return dict(metrics), curve
    result = _buy_and_hold(candles, balance, taker_fee)
    _BH_MEMO.insert(0, (key, list(candles.values()), result))
    del _BH_MEMO[2:]
    return dict(result[0]), result[1]


def _sorted_unique(t: np.ndarray) -> np.ndarray:
    """np.unique(t) by a sort (NumPy 2's hash-based unique took 0.7 s on a million close times, which one
    symbol gives already sorted)."""
    if len(t) > 1 and not bool(np.all(t[1:] > t[:-1])):
        t = np.sort(t, kind="stable")
        t = t[np.concatenate(([True], t[1:] != t[:-1]))]
    return t


def _buy_and_hold(
    candles: Mapping[str, Sequence[Candle]], balance: Decimal, taker_fee: Decimal
) -> tuple[dict[str, Any], list[tuple[int, float]]]:
    series = {s: c for s, c in candles.items() if c}
    start = float(balance)
    if not series:
        return {"return": None, "final_equity": plain_text(balance), "max_drawdown": None}, []
    share = start / len(series)
    fee = float(taker_fee)
    qty = {s: share * (1 - fee) / c[0].open for s, c in series.items()}
    # every symbol's last close at each close time of any symbol (its first open before its first close),
    # summed in the symbols' order: the same floats as a loop over the merged points, vectorised
    cols = {
        s: (
            np.fromiter((c.close_time for c in cs), np.int64, len(cs)),
            np.fromiter((c.close for c in cs), np.float64, len(cs)),
        )
        for s, cs in series.items()
    }
    times = _sorted_unique(np.concatenate([t for t, _ in cols.values()]))
    total: Any = 0
    for s, cs in series.items():
        own_t, closes = cols[s]
        k = np.searchsorted(own_t, times, side="right") - 1
        last = np.where(k >= 0, closes[np.maximum(k, 0)], float(cs[0].open))
        total = total + qty[s] * last
    value = total * (1 - fee)
    curve: list[tuple[int, float]] = list(zip(times.tolist(), value.tolist(), strict=True))
    final = curve[-1][1] if curve else start
    values = np.concatenate(([start], value))
    days = (curve[-1][0] - next(iter(series.values()))[0].open_time) / DAY_MS if curve else 0
    rets = cm.returns_from_equity(_daily(times, value, start))  # daily_values(curve, start), from the columns
    growth, dd = cm.cagr(_ends(values), days), max_drawdown(values)
    return (
        {
            "return": _num(final / start - 1) if start > 0 else None,
            "final_equity": plain_text(Decimal(str(round(final, 8)))),
            "max_drawdown": _num(dd),
            "cagr": _num(growth),
            "sharpe": _num(cm.sharpe(rets)),
            "sortino": _num(cm.sortino(rets)),
            "calmar": _num(growth / dd) if growth is not None and dd > 0 else None,
            "taker_fee": plain_text(taker_fee),
        },
        curve,
    )


def backtest_metrics(
    config: BacktestConfig,
    trades: Sequence[Trade],
    equity: Sequence[tuple[int, float]],
    candles: Mapping[str, Sequence[Candle]],
    *,
    taker_fee: Decimal,
) -> dict[str, Any]:
    """Every metric of a run. `candles`: what was actually replayed (a partial run: the part done)."""
    start = float(config.balance)
    closed = [float(t.pnl) for t in trades if t.exit_time is not None]
    # the curve's columns once (a year of 1m points: each pass over the tuples costs ~0.1 s)
    times, points = _columns(equity)
    daily = _daily(times, points, start) if equity else [start]
    rets = cm.returns_from_equity(daily)
    values = np.concatenate(([start], points)) if equity else np.array([start])
    first = min((c[0].open_time for c in candles.values() if c), default=config.start_ms)
    days = (equity[-1][0] - first) / DAY_MS if equity else 0.0
    dd = max_drawdown(values)
    growth = cm.cagr(_ends(values), days)
    pf = cm.profit_factor(closed)
    final = float(values[-1])
    fees = sum((t.fees for t in trades), Decimal(0))
    bh, _curve = buy_and_hold(candles, config.balance, taker_fee)
    return {
        "start_equity": plain_text(config.balance),
        "final_equity": plain_text(Decimal(str(round(final, 8)))),
        "net_pnl": plain_text(sum((t.pnl for t in trades), Decimal(0))),
        "realised_pnl": plain_text(sum((t.pnl for t in trades if t.exit_time is not None), Decimal(0))),
        "fees": plain_text(fees),
        "trades": len(trades),
        "closed_trades": len(closed),
        "open_at_end": sum(1 for t in trades if t.exit_time is None),
        "wins": sum(1 for p in closed if p > 0),
        "losses": sum(1 for p in closed if p < 0),
        "total_return": _num(final / start - 1) if start > 0 else None,
        "cagr": _num(growth),
        "sharpe": _num(cm.sharpe(rets)),
        "sortino": _num(cm.sortino(rets)),
        "max_drawdown": _num(dd),
        "calmar": _num(growth / dd) if growth is not None and dd > 0 else None,
        "profit_factor": _num(pf),
        "expectancy": _num(cm.expectancy(closed)),
        "win_rate": _num(cm.win_rate(closed)),
        "exposure": _num(exposure(trades, times)),
        "days": _num(days),
        "buy_and_hold": bh,
        "by_strategy": trade_table(trades, "strategy"),
        "by_symbol": trade_table(trades, "symbol"),
    }
