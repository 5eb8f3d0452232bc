"""market_data as a TimescaleDB hypertable with compression, when the extension is available.

Without TimescaleDB (or on SQLite) market_data stays a plain table indexed by its primary key
(symbol, interval, open_time); the choice is logged by Database.migrate.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import structlog
from alembic import op
from sqlalchemy import text

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

log = structlog.get_logger("store.migrations")
DAY_MS = 86_400_000


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        log.info("market_data: plain indexed table", dialect=bind.dialect.name)
        return
    available = bind.execute(text("SELECT 1 FROM pg_available_extensions WHERE name='timescaledb'")).scalar()
    if not available:
        log.info("market_data: TimescaleDB not available, plain indexed table")
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    op.execute(
        f"SELECT create_hypertable('market_data', 'open_time', chunk_time_interval => {7 * DAY_MS}, "
        "migrate_data => true, if_not_exists => true)"
    )
    op.execute(
        "CREATE OR REPLACE FUNCTION rt_now_ms() RETURNS BIGINT LANGUAGE SQL STABLE AS "
        "$$ SELECT (extract(epoch from now()) * 1000)::BIGINT $$"
    )
    op.execute("SELECT set_integer_now_func('market_data', 'rt_now_ms', replace_if_exists => true)")
    op.execute(
        "ALTER TABLE market_data SET (timescaledb.compress, timescaledb.compress_segmentby = 'symbol, interval')"
    )
    op.execute(f"SELECT add_compression_policy('market_data', {30 * DAY_MS}::BIGINT, if_not_exists => true)")
    log.info("market_data: TimescaleDB hypertable with compression after 30 days")


def downgrade() -> None:
    """A hypertable cannot be turned back into a plain table in place; nothing to undo elsewhere."""
