"""Fees paid in a third asset (e.g. BNB): `trade_fills.commission_quote` holds the fee's value in the quote
asset at the fill's time (set by the trader as it applies the fill), so the cycle's PnL, the ledger's
settlement and the PnL tracker all use that value instead of dropping the fee or re-pricing it later.
`trade_cycles.unpriced_fees` says which third-asset fees no price could be found for.

Both columns are nullable: fills stored before this revision (and fees in the base or quote asset) have
no quote value to store.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from roottrading.store.types import Money

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trade_fills") as batch:
        batch.add_column(sa.Column("commission_quote", Money(precision=38, scale=18), nullable=True))
    with op.batch_alter_table("trade_cycles") as batch:
        batch.add_column(sa.Column("unpriced_fees", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trade_cycles") as batch:
        batch.drop_column("unpriced_fees")
    with op.batch_alter_table("trade_fills") as batch:
        batch.drop_column("commission_quote")
