"""Capital: pockets ledger (reservations), PnL arithmetic, performance metrics and the text report."""

from roottrading.capital.ledger import InsufficientFunds, PocketLedger, Reservation, validate_allocation

__all__ = ["InsufficientFunds", "PocketLedger", "Reservation", "validate_allocation"]
