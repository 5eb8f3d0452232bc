"""Universe service: the pairs to trade (docs/universe.md)."""
