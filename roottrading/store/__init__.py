"""Persistence: SQLAlchemy 2 (async) tables, Alembic migrations, repositories."""

from roottrading.store.db import Database
from roottrading.store.repos_market import CandleRepo, SignalRepo
from roottrading.store.repos_orders import CycleRepo, OrderRepo
from roottrading.store.repos_safety import SafetyStateRepo
from roottrading.store.repos_strategy import StrategyStateRepo
from roottrading.store.repos_system import DecisionRepo, EventLogRepo, Processed

__all__ = [
    "CandleRepo",
    "CycleRepo",
    "Database",
    "DecisionRepo",
    "EventLogRepo",
    "OrderRepo",
    "Processed",
    "SafetyStateRepo",
    "SignalRepo",
    "StrategyStateRepo",
]
