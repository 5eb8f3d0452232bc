"""trade_fills keyed by (symbol, trade_id): Binance trade ids are unique per symbol only, so two symbols
could otherwise collide and a real fill would be dropped as a "duplicate".

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trade_fills", recreate="always") as batch:
        batch.drop_constraint("pk_trade_fills", type_="primary")
        batch.create_primary_key("pk_trade_fills", ["symbol", "trade_id"])


def downgrade() -> None:
    with op.batch_alter_table("trade_fills", recreate="always") as batch:
        batch.drop_constraint("pk_trade_fills", type_="primary")
        batch.create_primary_key("pk_trade_fills", ["trade_id"])
