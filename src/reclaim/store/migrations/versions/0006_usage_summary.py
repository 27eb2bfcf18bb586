"""Usage summary kept current one day at a time: the events it reflects per day.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Registers the table on the shared metadata whenever migrations load, so the schema
# comparison (tests/integration/test_store_migrations.py) sees it.
import reclaim.store.summaries  # noqa: F401

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Left empty: the first decision run finds the summary reflects no event, compares
    # each day of usage_daily with it and refreshes every day (one pass, in SQL).
    op.create_table(
        "usage_summary_days",
        sa.Column("day", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("day", name="pk_usage_summary_days"),
    )


def downgrade() -> None:
    op.drop_table("usage_summary_days")
