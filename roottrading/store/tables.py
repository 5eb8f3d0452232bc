"""All tables. Names follow the reference (trade_executions, trade_cycles, market_data, ...).

Time columns are UTC epoch milliseconds (BigInteger): one convention from the exchange to the dashboard.
Change a table here, then `alembic revision --autogenerate` (see docs/store.md).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text

from roottrading.store.types import JsonDoc, Money

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

market_data = Table(
    "market_data",
    metadata,
    Column("symbol", String(20), primary_key=True),
    Column("interval", String(4), primary_key=True),
    Column("open_time", BigInteger, primary_key=True),
    Column("close_time", BigInteger, nullable=False),
    Column("open", Float, nullable=False),
    Column("high", Float, nullable=False),
    Column("low", Float, nullable=False),
    Column("close", Float, nullable=False),
    Column("volume", Float, nullable=False),
    Column("quote_volume", Float, nullable=False, default=0.0),
    Column("trades", Integer, nullable=False, default=0),
)

trading_signals = Table(
    "trading_signals",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("time", BigInteger, nullable=False),
    Column("symbol", String(20), nullable=False),
    Column("strategy", String(80), nullable=False),
    Column("side", String(4), nullable=False),
    Column("strength", String(12), nullable=False),
    Column("price", Float, nullable=False),
    Column("interval", String(4), nullable=False),
    Column("stop_loss", Float),
    Column("take_profit", Float),
    Column("trailing_pct", Float),
    Column("regime", String(40)),
    Column("meta", JsonDoc, nullable=False, default=dict),
    Column("tag", String(64)),  # the strategy's entry/exit tag (0006)
    Index("ix_trading_signals_symbol_time", "symbol", "time"),
    Index("ix_trading_signals_strategy_time", "strategy", "time"),
)

trade_executions = Table(
    "trade_executions",
    metadata,
    Column("order_id", String(64), primary_key=True),  # our deterministic client order id
    Column("exchange_order_id", String(64)),
    Column("cycle_id", String(64)),
    Column("symbol", String(20), nullable=False),
    Column("side", String(4), nullable=False),
    Column("type", String(24), nullable=False),
    Column("status", String(20), nullable=False),
    Column("time_in_force", String(4), nullable=False, default="GTC"),
    Column("price", Money),
    Column("stop_price", Money),
    Column("quantity", Money, nullable=False),
    Column("executed_quantity", Money, nullable=False),
    Column("quote_quantity", Money, nullable=False),
    Column("reject_reason", Text),
    Column("demo", Boolean, nullable=False, default=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_trade_executions_symbol_created", "symbol", "created_at"),
    Index("ix_trade_executions_status", "status"),
    Index("ix_trade_executions_cycle", "cycle_id"),
)

trade_fills = Table(
    "trade_fills",
    metadata,
    # Binance trade ids are unique per symbol only, so the key is (symbol, trade_id)
    Column("symbol", String(20), primary_key=True),
    Column("trade_id", String(64), primary_key=True),
    Column("order_id", String(64), nullable=False),
    Column("exchange_order_id", String(64)),
    Column("side", String(4), nullable=False),
    Column("price", Money, nullable=False),
    Column("quantity", Money, nullable=False),
    Column("quote_quantity", Money, nullable=False),
    Column("commission", Money, nullable=False),
    Column("commission_asset", String(12), nullable=False),
    Column("commission_quote", Money),  # a third-asset fee (BNB) valued in quote at fill time (0004)
    Column("is_maker", Boolean, nullable=False, default=False),
    Column("time", BigInteger, nullable=False),
    Index("ix_trade_fills_order", "order_id"),
    Index("ix_trade_fills_symbol_time", "symbol", "time"),
)

trade_cycles = Table(
    "trade_cycles",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("symbol", String(20), nullable=False),
    Column("strategy", String(80), nullable=False),
    Column("side", String(4), nullable=False),
    Column("status", String(20), nullable=False),
    Column("entry_order_id", String(64)),
    Column("exit_order_id", String(64)),
    Column("entry_price", Money),
    Column("exit_price", Money),
    Column("quantity", Money, nullable=False),
    Column("stop_loss", Money),
    Column("take_profit", Money),
    Column("trailing_pct", Money),
    Column("trailing_extreme", Money),
    Column("fees", Money, nullable=False),
    Column("profit_loss", Money),
    Column("profit_loss_percent", Money),
    Column("reservation_id", String(64)),
    Column("signal_id", String(200)),
    Column("close_reason", String(80)),
    Column("unpriced_fees", String(200)),  # third-asset fees without a price (0004)
    Column("entry_tag", String(64)),  # tags of the signals that opened / closed the cycle (0006)
    Column("exit_tag", String(64)),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_trade_cycles_status", "status"),
    Index("ix_trade_cycles_symbol_strategy", "symbol", "strategy"),
)

portfolio_balances = Table(
    "portfolio_balances",
    metadata,
    Column("asset", String(12), primary_key=True),
    Column("free", Money, nullable=False),
    Column("locked", Money, nullable=False),
    Column("total", Money, nullable=False),
    Column("value_usdc", Money),  # value in the quote asset (name kept from the reference)
    Column("updated_at", BigInteger, nullable=False),
)

capital_pockets = Table(
    "capital_pockets",
    metadata,
    Column("pocket_type", String(20), primary_key=True),
    Column("allocation_percent", Money, nullable=False),
    Column("current_value", Money, nullable=False),
    Column("used_value", Money, nullable=False),
    Column("available_value", Money, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

pocket_reservations = Table(
    "pocket_reservations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("pocket_type", String(20), nullable=False),
    Column("cycle_id", String(64)),
    Column("amount", Money, nullable=False),
    Column("status", String(12), nullable=False),  # reserved, consumed, released
    Column("reason", String(200)),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_pocket_reservations_status", "status"),
)

performance_stats = Table(
    "performance_stats",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", BigInteger, nullable=False),
    Column("period", String(10), nullable=False),
    Column("scope", String(10), nullable=False),  # all, strategy, symbol
    Column("scope_value", String(80), nullable=False, default=""),
    Column("metrics", JsonDoc, nullable=False),
    Index("ix_performance_stats_scope", "scope", "scope_value", "time"),
)

event_logs = Table(
    "event_logs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(64), unique=True),
    Column("time", BigInteger, nullable=False),
    Column("level", String(10), nullable=False),
    Column("service", String(40), nullable=False),
    Column("event", Text, nullable=False),
    Column("context", JsonDoc, nullable=False),
    Index("ix_event_logs_time", "time"),
    Index("ix_event_logs_service_level", "service", "level"),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("signal_id", String(200), nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("symbol", String(20), nullable=False),
    Column("strategy", String(80), nullable=False),
    Column("decision", String(12), nullable=False),  # accepted, rejected
    Column("reason", Text, nullable=False),
    Column("details", JsonDoc, nullable=False),
    Index("ix_decisions_signal", "signal_id"),
    Index("ix_decisions_time", "time"),
    # one row per (signal, decision): no signal decided twice, whichever coordinator instance (migration 0006)
    Index("ux_decisions_signal_decision", "signal_id", "decision", unique=True),  # (0007)
)

processed_messages = Table(
    "processed_messages",
    metadata,
    Column("consumer", String(80), primary_key=True),
    Column("message_id", String(200), primary_key=True),
    Column("time", BigInteger, nullable=False),
)

# --- backtests (roottrading/backtest): a run, its settings, its trades, its equity curve ---------------------
backtest_runs = Table(
    "backtest_runs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("created_at", BigInteger, nullable=False),  # wall time of the run (epoch ms)
    Column("status", String(12), nullable=False),  # running, completed, interrupted, failed
    Column("engine", String(10), nullable=False),  # the engine that ran (fast may hand a run to replay)
    Column("fallback", Text),
    Column("strategies", JsonDoc, nullable=False),
    Column("symbols", JsonDoc, nullable=False),
    Column("interval", String(4), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger, nullable=False),
    Column("data", Text, nullable=False),
    Column("balance", Money, nullable=False),
    Column("stake", Money),
    Column("params", JsonDoc, nullable=False),  # --param, per strategy
    Column("settings", JsonDoc, nullable=False),  # --set overrides, as given
    Column("candles", BigInteger, nullable=False, default=0),
    Column("seconds", Float, nullable=False, default=0.0),
    Column("metrics", JsonDoc, nullable=False),
    Column("warnings", JsonDoc, nullable=False),
    Index("ix_backtest_runs_created", "created_at"),
)

backtest_trades = Table(
    "backtest_trades",
    metadata,
    Column("run_id", String(40), primary_key=True),
    Column("seq", Integer, primary_key=True),  # the trade's position in the run (entry order)
    Column("symbol", String(20), nullable=False),
    Column("strategy", String(80), nullable=False),
    Column("entry_time", BigInteger, nullable=False),
    Column("entry_price", Money, nullable=False),
    Column("exit_time", BigInteger),
    Column("exit_price", Money),
    Column("quantity", Money, nullable=False),
    Column("fees", Money, nullable=False),
    Column("pnl", Money, nullable=False),
    Column("exit_reason", String(40)),
    Column("entry_tag", String(64)),  # (0006)
    Column("exit_tag", String(64)),
)

backtest_equity = Table(
    "backtest_equity",
    metadata,
    Column("run_id", String(40), primary_key=True),
    Column("time", BigInteger, primary_key=True),
    Column("equity", Float, nullable=False),  # a chart, not the order path
)

# Safety state that must survive any restart (kill switch, pauses, locks, equity peak, the paper account):
# one JSON document per owner ("risk", "trader", "paper_account"), rewritten whole on each change that matters.
safety_state = Table(
    "safety_state",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("doc", JsonDoc, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Per-strategy persistent state: a small JSON document per (strategy, symbol) that a strategy keeps across
# candles and restarts (`self.state(symbol)`), rewritten whole when it changed after an evaluation (0006).
strategy_state = Table(
    "strategy_state",
    metadata,
    Column("strategy", String(80), primary_key=True),
    Column("symbol", String(20), primary_key=True),
    Column("doc", JsonDoc, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
