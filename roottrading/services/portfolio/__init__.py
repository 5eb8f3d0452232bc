"""Portfolio service: balances, pockets, reconciliation, trades and performance."""
