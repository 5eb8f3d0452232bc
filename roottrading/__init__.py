"""RootTrading: automated crypto trading platform (one code path for backtest, paper and live)."""

__version__ = "0.1.0"
