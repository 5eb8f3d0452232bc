"""Simulator settings: fees, slippage, liquidity cap, latency. Immutable so a run is reproducible."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class SimConfig:
    """How the simulated exchange executes.

    maker_fee / taker_fee: fraction of the traded amount, charged in the asset received (Binance's default
        without BNB discount is 0.1% = Decimal("0.001")).
    slippage_bps: MARKET orders fill this many basis points worse than the reference price (ask for a buy,
        bid for a sell, else the last trade), rounded to the tick away from the trader.
    volume_cap: None = unlimited liquidity. Otherwise the fraction of each market event's volume that the
        account may trade: per candle (volume * cap, shared by every fill in that candle and by orders placed
        before the next candle), per trade tick with a quantity (quantity * cap), per book update with sizes
        (level size * cap). Whatever does not fit stays open (limit orders) or expires (MARKET, IOC).
    latency_ms: new orders take effect (start matching) this many ms of simulated time after they are sent;
        cancels act at once (a conservative simplification: a real cancel can lose the race to a fill).
    history_limit: how many trades per symbol, and how many closed orders, the account remembers for
        my_trades / all_orders / query_order (oldest forgotten first; open orders are never forgotten), so a
        paper account running for months keeps a bounded memory. Binance too limits how far back these reach.
    """

    maker_fee: Decimal = Decimal("0.001")
    taker_fee: Decimal = Decimal("0.001")
    slippage_bps: Decimal = Decimal(0)
    volume_cap: Decimal | None = None
    latency_ms: int = 0
    history_limit: int = 100_000

    def __post_init__(self) -> None:
        if self.maker_fee < 0 or self.taker_fee < 0 or self.maker_fee >= 1 or self.taker_fee >= 1:
            raise ValueError(f"fees must be in [0, 1): maker={self.maker_fee} taker={self.taker_fee}")
        if self.slippage_bps < 0:
            raise ValueError(f"slippage_bps must be >= 0, got {self.slippage_bps}")
        if self.volume_cap is not None and not (0 < self.volume_cap <= 1):
            raise ValueError(f"volume_cap must be in (0, 1] or None, got {self.volume_cap}")
        if self.history_limit < 1:
            raise ValueError(f"history_limit must be >= 1, got {self.history_limit}")
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, got {self.latency_ms}")
