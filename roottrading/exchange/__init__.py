"""Exchange port (base.Exchange), Binance symbol filters, Binance error codes, and the simulated exchange.

Implementations: sim.SimExchange (in-process), binance/ (live REST+WS), fake_binance/ (Binance-shaped
server over the simulator). They share base.Exchange, errors and filters.
"""

from roottrading.exchange.base import BalanceUpdate, Exchange, ExchangeUpdate, OrderList, OrderUpdate
from roottrading.exchange.errors import BinanceError, ExchangeError, FilterFailure
from roottrading.exchange.filters import SymbolRules, load_exchange_info, parse_exchange_info

__all__ = [
    "BalanceUpdate",
    "BinanceError",
    "Exchange",
    "ExchangeError",
    "ExchangeUpdate",
    "FilterFailure",
    "OrderList",
    "OrderUpdate",
    "SymbolRules",
    "load_exchange_info",
    "parse_exchange_info",
]
