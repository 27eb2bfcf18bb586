"""Identities (SID, Entra object id, account name per user) and usage-source state.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Registers the tables on the shared metadata whenever migrations load, so the schema
# comparison (alembic autogenerate, tests/integration/test_store_migrations.py) sees them
# even when nothing else imported the module.
import reclaim.store.identity_tables  # noqa: F401

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identities",
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("on_prem_sid", sa.String(200)),
        sa.Column("entra_object_id", sa.String(36)),
        sa.Column("sam_account_name", sa.String(256)),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name="pk_identities"),
        sa.UniqueConstraint("on_prem_sid", name="uq_identities_on_prem_sid"),
        sa.UniqueConstraint("entra_object_id", name="uq_identities_entra_object_id"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_identities_user_id_users"),
    )
    op.create_index("ix_identities_sam_account_name", "identities", ["sam_account_name"])
    op.create_table(
        "source_state",
        sa.Column("source_id", sa.Integer, nullable=False),
        sa.Column("key", sa.String(1000), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("source_id", "key", name="pk_source_state"),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name="fk_source_state_source_id_sources"
        ),
    )


def downgrade() -> None:
    op.drop_table("source_state")
    op.drop_index("ix_identities_sam_account_name", table_name="identities")
    op.drop_table("identities")
