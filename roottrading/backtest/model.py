"""What a backtest is asked and what it answers: shared by both engines, the CLI, the API and the reports.

Why one model: the `replay` engine (the platform's own services on history) and the `fast` engine (compiled
simulation) must be comparable trade for trade, so they take the same `BacktestConfig` and return the same
`BacktestResult`; a parity test compares two results, a report renders one, the store saves one.
Money is Decimal (the trades are what the order path did); the equity curve is float (a chart).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

Engine = Literal["fast", "replay"]


class EngineUnavailable(Exception):
    """An engine cannot run this config (e.g. `fast` meets a setting it does not model); the message says
    why, and the runner hands the run to `replay` with that reason in `BacktestResult.fallback`."""


@dataclass(frozen=True)
class BacktestConfig:
    """A backtest's whole question. `settings` are overrides of ANY platform setting (`--set KEY=VALUE`),
    `params` per strategy (`--param NAME.KEY=VALUE`); `stake` a fixed quote amount per trade instead of the
    coordinator's risk sizing."""

    strategies: tuple[str, ...]
    symbols: tuple[str, ...]
    interval: str
    start_ms: int
    end_ms: int
    data: str = "store"  # "store", a Parquet folder (download-data) or Binance monthly CSV/zip files
    balance: Decimal = Decimal(10_000)
    engine: Engine = "fast"
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    stake: Decimal | None = None
    allow_gaps: bool = False


@dataclass(frozen=True)
class Trade:
    """One closed (or, at the end of the data, still open) cycle: when, at what price, how much, what it cost."""

    symbol: str
    strategy: str
    entry_time: int  # epoch ms
    entry_price: Decimal
    exit_time: int | None  # None: still open when the data ended
    exit_price: Decimal | None
    quantity: Decimal
    fees: Decimal  # in the quote asset
    pnl: Decimal  # realised (or marked at the last close when still open)
    exit_reason: str | None = None  # stop_loss, take_profit, trailing_stop, signal, end_of_data, ...
    entry_tag: str | None = None  # the strategy's tags on the entry / exit signals (outputs(enter_tag=...))
    exit_tag: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The `--json` row: times in epoch ms, money as plain-notation strings."""
        from roottrading.domain.money import plain_text

        return {
            "symbol": self.symbol,
            "strategy": self.strategy,
            "entry_time": self.entry_time,
            "entry_price": plain_text(self.entry_price),
            "exit_time": self.exit_time,
            "exit_price": None if self.exit_price is None else plain_text(self.exit_price),
            "quantity": plain_text(self.quantity),
            "fees": plain_text(self.fees),
            "pnl": plain_text(self.pnl),
            "exit_reason": self.exit_reason,
            "entry_tag": self.entry_tag,
            "exit_tag": self.exit_tag,
        }


@dataclass(repr=False)
class BacktestResult:
    config: BacktestConfig
    engine: Engine  # the engine that actually ran (fast may hand a run to replay: see `fallback`)
    candles: int
    seconds: float
    trades: list[Trade]
    equity: list[tuple[int, float]]  # (epoch ms, account value in quote) at each candle close or day
    metrics: dict[str, Any]
    fallback: str | None = None  # why `fast` handed the run to `replay`, if it did
    warnings: list[str] = field(default_factory=list)  # data quality, bias checks, unmodelled settings
    interrupted: bool = False  # stopped early (Ctrl-C): `candles` says how far it got

    def __repr__(self) -> str:
        """A summary, not every field: asyncio.run's cleanup formats the main task, and with it its result, when
        it restores the SIGINT handler (signal.signal -> enum lookup of a functools.partial -> %r); the
        generated repr of a year of equity points and trades cost ~0.6 s per run, twice."""
        return (
            f"BacktestResult(engine={self.engine!r}, candles={self.candles}, seconds={self.seconds:.3f}, "
            f"trades={len(self.trades)}, equity={len(self.equity)} points, fallback={self.fallback!r}, "
            f"interrupted={self.interrupted})"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "candles": self.candles,
            "seconds": self.seconds,
            "engine": self.engine,
            "fallback": self.fallback,
            "interrupted": self.interrupted,
            "metrics": self.metrics,
            "warnings": self.warnings,
            "trades": [t.as_json() for t in self.trades],
        }
