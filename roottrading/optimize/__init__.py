"""`roottrading optimize`: walk-forward parameter search over the backtest engines (see docs/optimisation.md)."""
