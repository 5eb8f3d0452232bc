"""safety_state: the kill switch, pauses, locks, equity peak and the paper account, stored so that no restart
undoes them (issue 18).

Revision ID: 0005_safety_state
Revises: 0004_backtests
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005_safety_state"
down_revision = "0004_backtests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "safety_state",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("doc", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_safety_state")),
    )


def downgrade() -> None:
    op.drop_table("safety_state")
