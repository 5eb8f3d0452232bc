"""backtests: runs (config, settings, metrics), their trades and equity curves

Revision ID: 0004_backtests
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import roottrading.store.types

revision = "0004_backtests"
down_revision = "0004"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _money() -> roottrading.store.types.Money:
    return roottrading.store.types.Money(precision=38, scale=18)


def upgrade() -> None:
    op.create_table(
        "backtest_runs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("engine", sa.String(length=10), nullable=False),
        sa.Column("fallback", sa.Text(), nullable=True),
        sa.Column("strategies", _json(), nullable=False),
        sa.Column("symbols", _json(), nullable=False),
        sa.Column("interval", sa.String(length=4), nullable=False),
        sa.Column("start_time", sa.BigInteger(), nullable=False),
        sa.Column("end_time", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("balance", _money(), nullable=False),
        sa.Column("stake", _money(), nullable=True),
        sa.Column("params", _json(), nullable=False),
        sa.Column("settings", _json(), nullable=False),
        sa.Column("candles", sa.BigInteger(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("metrics", _json(), nullable=False),
        sa.Column("warnings", _json(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backtest_runs")),
    )
    with op.batch_alter_table("backtest_runs", schema=None) as batch_op:
        batch_op.create_index("ix_backtest_runs_created", ["created_at"], unique=False)
    op.create_table(
        "backtest_trades",
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=20), nullable=False),
        sa.Column("strategy", sa.String(length=80), nullable=False),
        sa.Column("entry_time", sa.BigInteger(), nullable=False),
        sa.Column("entry_price", _money(), nullable=False),
        sa.Column("exit_time", sa.BigInteger(), nullable=True),
        sa.Column("exit_price", _money(), nullable=True),
        sa.Column("quantity", _money(), nullable=False),
        sa.Column("fees", _money(), nullable=False),
        sa.Column("pnl", _money(), nullable=False),
        sa.Column("exit_reason", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "seq", name=op.f("pk_backtest_trades")),
    )
    op.create_table(
        "backtest_equity",
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("equity", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "time", name=op.f("pk_backtest_equity")),
    )


def downgrade() -> None:
    op.drop_table("backtest_equity")
    op.drop_table("backtest_trades")
    with op.batch_alter_table("backtest_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_backtest_runs_created")
    op.drop_table("backtest_runs")
