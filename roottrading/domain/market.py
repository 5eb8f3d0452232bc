"""Market data value types. Prices here are floats: they feed indicators, not the order path."""

from __future__ import annotations

import msgspec

INTERVAL_MS: dict[str, int] = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}


def interval_ms(interval: str) -> int:
    """Length of a Binance interval in milliseconds; a clear error for an unknown one."""
    try:
        return INTERVAL_MS[interval]
    except KeyError:
        raise ValueError(f"unknown interval {interval!r}; expected one of {', '.join(INTERVAL_MS)}") from None


class Candle(msgspec.Struct, frozen=True, kw_only=True):
    """One OHLCV bar. `open_time` is UTC epoch ms; `closed` is False for an in-progress bar."""

    symbol: str
    interval: str
    open_time: int
    close_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float = 0.0
    trades: int = 0
    closed: bool = True

    @property
    def key(self) -> str:
        """Natural identity, used as the bus message id so re-published candles deduplicate."""
        return f"{self.symbol}:{self.interval}:{self.open_time}"


class Tick(msgspec.Struct, frozen=True, kw_only=True):
    """A trade or a best bid/ask update."""

    symbol: str
    time: int
    price: float
    quantity: float = 0.0
    bid: float | None = None
    ask: float | None = None
    trade_id: int | None = None
    is_buyer_maker: bool | None = None
