"""Web app and API: accounts, API tokens, audit log, idempotency keys, login failures.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Registers the tables on the shared metadata whenever migrations load, so the schema
# comparison (alembic autogenerate, tests/integration/test_store_migrations.py) sees them
# even when nothing else imported the module.
import reclaim.store.web_tables  # noqa: F401

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("password_hash", sa.Text),
        sa.Column("oidc_subject", sa.String(500)),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("session_epoch", sa.Integer, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.Column("last_login", sa.BigInteger),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
        sa.UniqueConstraint("email", name="uq_accounts_email"),
        sa.UniqueConstraint("oidc_subject", name="uq_accounts_oidc_subject"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(320), nullable=False),
        sa.Column("expires", sa.BigInteger),
        sa.Column("last_used", sa.BigInteger),
        sa.Column("revoked", sa.BigInteger),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_index("ix_api_tokens_prefix", "api_tokens", ["prefix"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("actor_kind", sa.String(10), nullable=False),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("target", sa.String(500)),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("client_ip", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    op.create_table(
        "idempotency_keys",
        sa.Column("principal", sa.String(100), nullable=False),
        sa.Column("endpoint", sa.String(100), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("response", sa.Text),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("principal", "endpoint", "key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created"])
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("account", sa.String(320), nullable=False),
        sa.Column("client_ip", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_login_failures"),
    )
    op.create_index("ix_login_failures_account", "login_failures", ["account"])
    op.create_index("ix_login_failures_client_ip", "login_failures", ["client_ip"])
    op.create_index("ix_login_failures_at", "login_failures", ["at"])


def downgrade() -> None:
    op.drop_table("login_failures")
    op.drop_table("idempotency_keys")
    op.drop_table("audit_log")
    op.drop_table("api_tokens")
    op.drop_table("accounts")
