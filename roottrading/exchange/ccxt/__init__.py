"""Exchanges through ccxt (`EXCHANGE=ccxt:<id>`): the Exchange port over ccxt's async client."""
