"""Per-cycle PnL from fills, with fees, and its aggregation (strategy, symbol, UTC day, equity curve).

Convention (mark-to-market cash flow, long-only spot cycles):

    cash    = sum(sell quote_quantity) - sum(buy quote_quantity) - fees paid in the quote asset
              - fees paid in a third asset (e.g. BNB) valued at the fill's time (`commission_quote`)
    net_qty = sum(buy quantity) - sum(sell quantity) - fees paid in the base asset
    PnL     = cash + net_qty * P

P is the average exit price for a terminal cycle (its PnL is *realised*) and the latest mark (last candle
close) for an open one (its whole PnL is *unrealised*). A fee paid in the base asset therefore costs what
that base is worth: buying 1 BTC at 100 with a 0.001 BTC fee leaves 0.999 BTC; selling those 0.999 at 110
with a 0.10989 USDT fee realises 109.89 - 100 - 0.10989 = 9.78011. If the exit sold the full 1 BTC (the fee
was taken from other holdings), the missing 0.001 BTC is charged at the exit price: 110 - 100 - 0.11 - 0.11
= 9.78. `fees` reports every fee in quote at its own fill's price (base fee x fill price).
A third-asset fee is valued once, when the trader applies the fill (its `commission_quote`, stored with the
fill): the trader's PnL, the ledger's settlement and this tracker then use one number, however that asset
moves later. A fill stored without it (older rows) is valued at `prices` (the latest marks); a fee no price
is known for is left out of the PnL and reported in `unpriced_fees` ("0.001 BNB"), never silently 0.
A cycle without stored fills falls back to the trader's `profit_loss` and `fees` on the cycle.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from roottrading.domain import CycleStatus, TradeCycle

ZERO = Decimal(0)
DAY_MS = 86_400_000
QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "TUSD", "BTC", "ETH", "BNB", "EUR")


def split_symbol(symbol: str, quote: str = "USDT") -> tuple[str, str]:
    """BTCUSDT -> (BTC, USDT); the configured quote asset is tried first."""
    for qa in (quote, *QUOTES):
        if symbol.endswith(qa) and len(symbol) > len(qa):
            return symbol[: -len(qa)], qa
    return symbol[:-4], symbol[-4:]


@dataclass(frozen=True)
class CyclePnl:
    cycle_id: str
    symbol: str
    strategy: str
    status: str
    opened_at: int
    closed_at: int | None  # None while open
    realised: Decimal
    unrealised: Decimal
    fees: Decimal
    invested: Decimal  # quote spent on entries (the denominator of a cycle's return)
    net_qty: Decimal
    source: str  # "fills" or "cycle"
    unpriced_fees: str | None = None  # third-asset fees left out for want of a price, e.g. "0.001 BNB"

    @property
    def total(self) -> Decimal:
        return self.realised + self.unrealised

    def as_dict(self) -> dict[str, Any]:
        from roottrading.capital.ledger import fmt

        return {
            "cycle_id": self.cycle_id,
            "symbol": self.symbol,
            "strategy": self.strategy,
            "status": self.status,
            "opened_at": self.opened_at,
            "closed_at": self.closed_at,
            "realised": fmt(self.realised),
            "unrealised": fmt(self.unrealised),
            "fees": fmt(self.fees),
            "invested": fmt(self.invested),
            "source": self.source,
            "unpriced_fees": self.unpriced_fees,
        }


def cycle_pnl(
    cycle: TradeCycle,
    fills: Sequence[Mapping[str, Any]],
    *,
    quote_asset: str = "USDT",
    mark: Decimal | None = None,
    prices: Mapping[str, Decimal] | None = None,
) -> CyclePnl:
    """PnL of one cycle. `fills` are trade_fills rows (or dicts with the same keys); `prices` values third
    fee assets of fills stored without `commission_quote` (asset -> price in quote)."""
    base, quote = split_symbol(cycle.symbol, quote_asset)
    terminal = cycle.status.is_terminal
    closed_at = cycle.updated_at if terminal else None
    if not fills:
        return _from_cycle(cycle, mark, closed_at)
    cash = net = fees = invested = sell_qty = sell_quote = ZERO
    last_price = ZERO
    unpriced: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for f in sorted(fills, key=lambda r: (r["time"], str(r.get("trade_id", "")))):
        price, qty, qq = Decimal(f["price"]), Decimal(f["quantity"]), Decimal(f["quote_quantity"])
        com, asset = Decimal(f["commission"]), str(f["commission_asset"])
        side = getattr(f["side"], "value", f["side"])
        last_price = price
        if side == "BUY":
            cash, net, invested = cash - qq, net + qty, invested + qq
        else:
            cash, net, sell_qty, sell_quote = cash + qq, net - qty, sell_qty + qty, sell_quote + qq
        if com:
            if asset == quote:
                cash, fees = cash - com, fees + com
            elif asset == base:
                net, fees = net - com, fees + com * price
            else:
                value = third_asset_fee(f, prices)
                if value is None:
                    unpriced[asset] += com
                else:
                    cash, fees = cash - value, fees + value
    if terminal:
        exit_price = sell_quote / sell_qty if sell_qty else (mark or last_price)
        realised, unrealised = cash + net * exit_price, ZERO
    else:
        realised, unrealised = ZERO, cash + net * (mark if mark is not None else last_price)
    return CyclePnl(
        cycle.id,
        cycle.symbol,
        cycle.strategy,
        cycle.status.value,
        cycle.created_at,
        closed_at,
        realised,
        unrealised,
        fees,
        invested,
        net,
        "fills",
        describe_fees(unpriced),
    )


def third_asset_fee(fill: Mapping[str, Any], prices: Mapping[str, Decimal] | None) -> Decimal | None:
    """A third-asset fee in quote: its value at fill time when stored, else at `prices`, else None."""
    stored = fill.get("commission_quote")
    if stored is not None:
        return Decimal(stored)
    asset = str(fill["commission_asset"])
    if prices and asset in prices:
        return Decimal(fill["commission"]) * prices[asset]
    return None


def describe_fees(amounts: Mapping[str, Decimal]) -> str | None:
    """{"BNB": 0.001} -> "0.001 BNB" (None when empty): what a cycle says about fees it could not value."""
    from roottrading.capital.ledger import fmt

    return ", ".join(f"{fmt(v)} {a}" for a, v in sorted(amounts.items()) if v) or None


def _from_cycle(cycle: TradeCycle, mark: Decimal | None, closed_at: int | None) -> CyclePnl:
    invested = (cycle.entry_price or ZERO) * cycle.quantity
    if cycle.status.is_terminal:
        return CyclePnl(
            cycle.id,
            cycle.symbol,
            cycle.strategy,
            cycle.status.value,
            cycle.created_at,
            closed_at,
            cycle.profit_loss or ZERO,
            ZERO,
            cycle.fees,
            invested,
            ZERO,
            "cycle",
            cycle.unpriced_fees,
        )
    unreal = ZERO
    if cycle.entry_price is not None and mark is not None and cycle.status is CycleStatus.ACTIVE:
        unreal = (mark - cycle.entry_price) * cycle.quantity - cycle.fees
    return CyclePnl(
        cycle.id,
        cycle.symbol,
        cycle.strategy,
        cycle.status.value,
        cycle.created_at,
        None,
        ZERO,
        unreal,
        cycle.fees,
        invested,
        cycle.quantity,
        "cycle",
        cycle.unpriced_fees,
    )


# ---- aggregation ------------------------------------------------------------------------------------
def day_of(ms: int) -> int:
    """Start of the UTC day containing `ms`."""
    return ms - ms % DAY_MS


def group(pnls: Iterable[CyclePnl], key: str) -> dict[str, dict[str, Any]]:
    """Totals per `key` ("strategy", "symbol" or "day" — day of close, UTC, as YYYY-MM-DD)."""
    import datetime as dt

    out: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "realised": ZERO,
            "unrealised": ZERO,
            "fees": ZERO,
            "closed": 0,
            "open": 0,
            "wins": 0,
            "losses": 0,
            "pnls": [],
        }
    )
    for p in pnls:
        if key == "day":
            if p.closed_at is None:
                continue
            k = dt.datetime.fromtimestamp(day_of(p.closed_at) / 1000, dt.UTC).strftime("%Y-%m-%d")
        else:
            k = getattr(p, key)
        g = out[k]
        g["realised"] += p.realised
        g["unrealised"] += p.unrealised
        g["fees"] += p.fees
        if p.closed_at is None:
            g["open"] += 1
        else:
            g["closed"] += 1
            g["pnls"].append(float(p.realised))
            g["wins"] += p.realised > 0
            g["losses"] += p.realised < 0
    return dict(out)


def closed_sorted(pnls: Iterable[CyclePnl]) -> list[CyclePnl]:
    return sorted((p for p in pnls if p.closed_at is not None), key=lambda p: (p.closed_at, p.cycle_id))


def equity_curve(
    pnls: Iterable[CyclePnl],
    start_equity: Decimal,
    *,
    since: int | None = None,
    now: int | None = None,
    unrealised: Decimal = ZERO,
) -> list[dict[str, Any]]:
    """Realised equity after each cycle close ([{time, equity}]), starting at `start_equity` plus what was
    realised before `since`; the last point (at `now`) adds the open positions' `unrealised` PnL."""
    from roottrading.capital.ledger import fmt

    closed = closed_sorted(pnls)
    before = [p.realised for p in closed if since is not None and p.closed_at < since]  # type: ignore[operator]
    eq = start_equity + sum(before, ZERO)
    first = since if since is not None else (closed[0].closed_at if closed else now)
    points = [{"time": first, "equity": fmt(eq)}] if first is not None else []
    for p in closed:
        if since is not None and p.closed_at < since:  # type: ignore[operator]
            continue
        eq += p.realised
        points.append({"time": p.closed_at, "equity": fmt(eq)})
    if now is not None:
        points.append({"time": now, "equity": fmt(eq + unrealised)})
    return points


def daily_equity(pnls: Iterable[CyclePnl], start_equity: Decimal, *, since: int | None, now: int) -> list[float]:
    """One realised equity value per UTC day (end of day), from `since` (or the first close) to `now`,
    days without closes included: the series Sharpe/Sortino/drawdown are computed on."""
    closed = closed_sorted(pnls)
    by_day: dict[int, Decimal] = defaultdict(lambda: ZERO)
    before = ZERO
    for p in closed:
        if since is not None and p.closed_at < since:  # type: ignore[operator]
            before += p.realised
        else:
            by_day[day_of(p.closed_at)] += p.realised  # type: ignore[arg-type]
    if since is not None:
        start = day_of(since)
    elif closed:
        start = day_of(closed[0].closed_at)  # type: ignore[arg-type]
    else:
        return [float(start_equity)]
    eq = start_equity + before
    series = [float(eq)]  # equity at the start of the first day
    for day in range(start, day_of(now) + DAY_MS, DAY_MS):
        eq += by_day.get(day, ZERO)
        series.append(float(eq))
    return series
