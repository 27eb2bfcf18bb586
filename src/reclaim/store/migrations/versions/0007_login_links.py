"""One-time sign-in links for the web app (``reclaim accounts login-link``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Registers the table on the shared metadata whenever migrations load, so the schema
# comparison (tests/integration/test_store_migrations.py) sees it.
import reclaim.store.login_links  # noqa: F401

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_links",
        sa.Column("id", sa.Integer),
        sa.Column("nonce_hash", sa.String(64), nullable=False),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("expires", sa.BigInteger, nullable=False),
        sa.Column("used", sa.BigInteger),
        sa.Column("used_from", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_login_links"),
        sa.UniqueConstraint("nonce_hash", name="uq_login_links_nonce_hash"),
    )
    op.create_index("ix_login_links_expires", "login_links", ["expires"])


def downgrade() -> None:
    op.drop_table("login_links")
