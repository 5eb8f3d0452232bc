"""A local Binance Spot look-alike (public market side) for tests and demos: REST + WebSocket over a
replayed or synthetic market, with Binance's request weights and switchable faults."""

from roottrading.exchange.fake_binance.app import Extension, FakeBinanceState, build_app, run
from roottrading.exchange.fake_binance.config import FakeBinanceConfig

__all__ = ["Extension", "FakeBinanceConfig", "FakeBinanceState", "build_app", "run"]
