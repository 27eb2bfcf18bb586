"""Entra directory sync state: the policy's group and its members by object id.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Registers the tables on the shared metadata whenever migrations load, so the schema
# comparison (alembic autogenerate, tests/integration/test_store_migrations.py) sees them.
import reclaim.store.directory_tables  # noqa: F401

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "directory_groups",
        sa.Column("policy_id", sa.Integer, nullable=False),
        sa.Column("object_id", sa.String(36), nullable=False),
        sa.Column("display_name", sa.String(256), nullable=False),
        sa.Column("is_dynamic", sa.Boolean, nullable=False),
        sa.Column("is_synced", sa.Boolean, nullable=False),
        sa.Column("sku_ids", sa.Text, nullable=False),
        sa.Column("delta_link", sa.Text),
        sa.Column("member_count", sa.Integer, nullable=False),
        sa.Column("direct_license_count", sa.Integer, nullable=False),
        sa.Column("synced_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("policy_id", name="pk_directory_groups"),
        sa.ForeignKeyConstraint(
            ["policy_id"], ["policies.id"], name="fk_directory_groups_policy_id_policies"
        ),
    )
    op.create_table(
        "directory_members",
        sa.Column("policy_id", sa.Integer, nullable=False),
        sa.Column("object_id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("granted_at", sa.BigInteger),
        sa.Column("direct_license", sa.Boolean, nullable=False),
        sa.Column("account_enabled", sa.Boolean),
        sa.Column("on_prem_synced", sa.Boolean),
        sa.PrimaryKeyConstraint("policy_id", "object_id", name="pk_directory_members"),
        sa.ForeignKeyConstraint(
            ["policy_id"], ["policies.id"], name="fk_directory_members_policy_id_policies"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_directory_members_user_id_users"
        ),
    )


def downgrade() -> None:
    op.drop_table("directory_members")
    op.drop_table("directory_groups")
