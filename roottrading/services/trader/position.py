"""Pure helpers of the trade cycle: position from fills, PnL, and local exit triggers.

Why pure: the same functions run live, in the backtest and in the property tests, and can be checked by
hand. Convention for the position (long-only spot): what the account holds for a cycle is
`bought - base commission on buys - sold` (a buy's fee is taken in the base asset, so it cannot be sold).
PnL follows roottrading.capital.pnl.cycle_pnl (the PnL tracker's convention), so the trader's number and
the tracker's number are the same number.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from roottrading.capital.pnl import cycle_pnl
from roottrading.domain import Fill, Side, TradeCycle

ZERO = Decimal(0)
HUNDRED = Decimal(100)
PCT_EXP = Decimal("0.0001")


@dataclass(frozen=True)
class Position:
    bought: Decimal = ZERO
    sold: Decimal = ZERO
    base_fee: Decimal = ZERO  # commission paid in the base asset (reduces what can be sold)
    buy_quote: Decimal = ZERO
    sell_quote: Decimal = ZERO

    @property
    def held(self) -> Decimal:
        return self.bought - self.base_fee - self.sold

    @property
    def net_bought(self) -> Decimal:
        return self.bought - self.base_fee

    @property
    def entry_price(self) -> Decimal | None:
        return self.buy_quote / self.bought if self.bought else None

    @property
    def exit_price(self) -> Decimal | None:
        return self.sell_quote / self.sold if self.sold else None


def position(fills: Iterable[Fill], base_asset: str) -> Position:
    bought = sold = base_fee = buy_quote = sell_quote = ZERO
    for f in fills:
        if f.side is Side.BUY:
            bought += f.quantity
            buy_quote += f.quote_quantity
        else:
            sold += f.quantity
            sell_quote += f.quote_quantity
        if f.commission and f.commission_asset == base_asset:
            base_fee += f.commission
    return Position(bought, sold, base_fee, buy_quote, sell_quote)


def fill_row(f: Fill) -> dict[str, object]:
    """A Fill as the trade_fills row shape that capital.pnl.cycle_pnl reads."""
    return {
        "trade_id": f.trade_id,
        "time": f.time,
        "side": f.side.value,
        "price": f.price,
        "quantity": f.quantity,
        "quote_quantity": f.quote_quantity,
        "commission": f.commission,
        "commission_asset": f.commission_asset,
        "commission_quote": f.commission_quote,
    }


def apply_fills(cycle: TradeCycle, fills: Sequence[Fill], base_asset: str, quote_asset: str) -> None:
    """Set the cycle's entry/exit prices, quantity (net of base fees), fees and, when terminal, its PnL."""
    pos = position(fills, base_asset)
    cycle.entry_price = pos.entry_price
    cycle.exit_price = pos.exit_price
    cycle.quantity = pos.net_bought
    if not fills:
        cycle.fees, cycle.unpriced_fees = ZERO, None
        return
    pnl = cycle_pnl(cycle, [fill_row(f) for f in fills], quote_asset=quote_asset)
    cycle.fees = pnl.fees
    cycle.unpriced_fees = pnl.unpriced_fees
    if cycle.status.is_terminal:
        cycle.profit_loss = pnl.realised
        cycle.profit_loss_percent = (pnl.realised / pnl.invested * HUNDRED).quantize(PCT_EXP) if pnl.invested else ZERO


# ------------------------------------------------------------------------------------------ exits
# A candle's prices are walked in the order of the simulator's intra-bar path,
# roottrading.exchange.sim.market.candle_path: one convention, one implementation.
def trailing_level(extreme: Decimal, pct: Decimal) -> Decimal:
    return extreme * (1 - pct / HUNDRED)


def walk_exits(
    cycle: TradeCycle, path: Sequence[Decimal], take_profit: bool = True, stops: bool = True
) -> tuple[str | None, Decimal | None]:
    """Walk prices in time order; return (reason, level) of the first exit condition met, else (None, None).

    `level` is the condition's price (the stop, the target, the trailing level then in force), not the price
    that met it: a simulated exit is filled where the path meets the level (see core.on_price).
    Updates `cycle.trailing_extreme` (highest price seen since entry) as it goes, so a trailing stop only
    ever moves up. Per point: stop-loss (price <= stop), take-profit (price >= target), trailing stop
    (price <= extreme * (1 - pct/100)), then the extreme is raised. `take_profit=False` ignores the target
    (a strategy vetoed that exit: its stops still hold along the same path). `stops=False` never exits on the
    stop or the trailing stop but still raises the extreme (the stop rests on the exchange: exchange_stops.py)."""
    sl, tp, pct = cycle.stop_loss if stops else None, cycle.take_profit if take_profit else None, cycle.trailing_pct
    for p in path:
        if sl is not None and p <= sl:
            return "stop_loss", sl
        if tp is not None and p >= tp:
            return "take_profit", tp
        if pct:
            ext = cycle.trailing_extreme
            if stops and ext is not None and p <= (level := trailing_level(ext, pct)):
                return "trailing_stop", level
            if ext is None or p > ext:
                cycle.trailing_extreme = p
    return None, None
