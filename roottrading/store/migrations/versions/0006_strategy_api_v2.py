"""Strategy API v2 (issue 19): entry/exit tags on signals, cycles and backtest trades; per-strategy state.

Revision ID: 0006_strategy_api_v2
Revises: 0005_safety_state
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006_strategy_api_v2"
down_revision = "0005_safety_state"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("trading_signals", sa.Column("tag", sa.String(length=64), nullable=True))
    for table in ("trade_cycles", "backtest_trades"):
        op.add_column(table, sa.Column("entry_tag", sa.String(length=64), nullable=True))
        op.add_column(table, sa.Column("exit_tag", sa.String(length=64), nullable=True))
    op.create_table(
        "strategy_state",
        sa.Column("strategy", sa.String(length=80), nullable=False),
        sa.Column("symbol", sa.String(length=20), nullable=False),
        sa.Column("doc", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("strategy", "symbol", name=op.f("pk_strategy_state")),
    )


def downgrade() -> None:
    op.drop_table("strategy_state")
    for table in ("backtest_trades", "trade_cycles"):
        op.drop_column(table, "exit_tag")
        op.drop_column(table, "entry_tag")
    op.drop_column("trading_signals", "tag")
