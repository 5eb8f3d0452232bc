"""Binance adapter. Market-data parts: `parse` (wire formats), `ws` (streams), `rest_market` (public REST).

Kept import-free on purpose: trading modules added here later must not pay for the market-data imports.
"""
