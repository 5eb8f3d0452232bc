"""Gateway service: Binance market data (WebSocket + REST backfill) -> ordered candles and ticks on the bus."""
