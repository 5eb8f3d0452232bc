"""Market API service: candles (aggregated to any longer interval), symbols with their filters, last prices."""
