"""decisions: at most one row per (signal, decision), so no signal is decided twice (issue 18: several
coordinators). Duplicates stored before (a redelivery racing a restart) are folded into the first row.

Revision ID: 0007_unique_decisions
Revises: 0006_strategy_api_v2
"""

from __future__ import annotations

from alembic import op

revision = "0007_unique_decisions"
down_revision = "0006_strategy_api_v2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM decisions WHERE id NOT IN (SELECT min(id) FROM decisions GROUP BY signal_id, decision)")
    op.create_index("ux_decisions_signal_decision", "decisions", ["signal_id", "decision"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_decisions_signal_decision", table_name="decisions")
