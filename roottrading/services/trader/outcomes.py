"""How the trader reads an exchange error: outcome unknown, certainly refused for now, or a read that failed.

Why a module of its own: core.py and every one of its mixins classify exchange errors the same way, and the
mixins import these here without importing core.py (which imports them). core.py re-exports the names.
"""

from roottrading.exchange.errors import Disconnected, ExchangeError, OrderFateUnknown, RateLimited, TooManyOrders

# Outcome unknown: the order may or may not exist. Query by client id before any retry.
UNKNOWN_OUTCOME = (OrderFateUnknown, Disconnected, TimeoutError, ConnectionError, OSError)
# Certainly not accepted, try again later with the same client id.
RETRY_LATER = (RateLimited, TooManyOrders)
# A read (order, trades, balances) that failed for any exchange reason changes nothing: try again later.
READ_RETRY = (ExchangeError, *UNKNOWN_OUTCOME)
