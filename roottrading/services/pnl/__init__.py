"""PnL tracker service: realised/unrealised PnL per cycle, strategy, symbol and day; metric snapshots."""
