"""Decisions: monthly usage summary, cases and their history, plans, leases, controls,
directory writes, notifications (outbox) and manual tasks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Left empty: the first decision run sees the summary is behind the imports
    # (summary_state) and builds it from usage_daily in one pass.
    op.create_table(
        "usage_monthly",
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("app_id", sa.Integer, nullable=False),
        sa.Column("month", sa.Integer, nullable=False),
        sa.Column("seconds", sa.BigInteger, nullable=False),
        sa.Column("days_mask", sa.BigInteger, nullable=False),
        *(sa.Column(f"d{d:02d}", sa.Integer, nullable=False) for d in range(1, 32)),
        sa.PrimaryKeyConstraint("user_id", "app_id", "month", name="pk_usage_monthly"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "summary_state",
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_summary_state"),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("policy_id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("cycle", sa.Integer, nullable=False),
        sa.Column("state", sa.String(30), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(20)),
        sa.Column("is_open", sa.Boolean, nullable=False),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("last_used", sa.Integer),
        sa.Column("asked_at", sa.BigInteger),
        sa.Column("answered_at", sa.BigInteger),
        sa.Column("reminders_sent", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("retry_at", sa.BigInteger),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("remove_key", sa.String(32), nullable=False),
        sa.Column("authorized_key", sa.String(32)),
        sa.Column("plan_id", sa.Integer),
        sa.Column("next_due_at", sa.BigInteger),
        sa.Column("lease_owner", sa.String(100)),
        sa.Column("lease_until", sa.BigInteger),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("opened_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("closed_at", sa.BigInteger),
        sa.PrimaryKeyConstraint("id", name="pk_cases"),
        sa.UniqueConstraint("policy_id", "user_id", "cycle", name="uq_cases_policy_user_cycle"),
        sa.ForeignKeyConstraint(["policy_id"], ["policies.id"], name="fk_cases_policy_id_policies"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_cases_user_id_users"),
    )
    op.create_index("ix_cases_next_due_at", "cases", ["next_due_at"])
    op.create_index("ix_cases_remove_key", "cases", ["remove_key"])
    op.create_index(
        "uq_cases_open",
        "cases",
        ["policy_id", "user_id"],
        unique=True,
        sqlite_where=sa.text("is_open IS 1"),
        postgresql_where=sa.text("is_open IS true"),
    )
    op.create_table(
        "case_events",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("case_id", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("from_state", sa.String(30)),
        sa.Column("to_state", sa.String(30), nullable=False),
        sa.Column("cause", sa.String(40), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_case_events"),
        sa.UniqueConstraint("case_id", "seq", name="uq_case_events_case_id"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_case_events_case_id_cases"),
    )
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("policies", sa.Text, nullable=False),
        sa.Column("as_of", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("decided_by", sa.String(200)),
        sa.Column("decided_at", sa.BigInteger),
        sa.Column("note", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_plans"),
    )
    op.create_table(
        "approved_keys",
        sa.Column("idempotency_key", sa.String(32), nullable=False),
        sa.Column("plan_id", sa.Integer, nullable=False),
        sa.Column("approved_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("idempotency_key", name="pk_approved_keys"),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name="fk_approved_keys_plan_id_plans"),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("owner", sa.String(100)),
        sa.Column("until", sa.BigInteger, nullable=False),
        sa.Column("tick_claimed", sa.BigInteger, nullable=False),
        sa.Column("tick_done", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )
    op.create_table(
        "controls",
        sa.Column("key", sa.String(40), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_controls"),
    )
    op.create_table(
        "directory_writes",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("idempotency_key", sa.String(32), nullable=False),
        sa.Column("case_id", sa.Integer, nullable=False),
        sa.Column("plan_id", sa.Integer),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("workflow", sa.String(20), nullable=False),
        sa.Column("sends", sa.Integer, nullable=False),
        sa.Column("sent_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger),
        sa.Column("result", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_directory_writes"),
        sa.UniqueConstraint("idempotency_key", name="uq_directory_writes_idempotency_key"),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_directory_writes_case_id_cases"
        ),
    )
    op.create_index("ix_directory_writes_plan_id", "directory_writes", ["plan_id"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("idempotency_key", sa.String(32), nullable=False),
        sa.Column("case_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("reminder", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(20)),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.UniqueConstraint("idempotency_key", name="uq_notifications_idempotency_key"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_notifications_case_id_cases"),
    )
    op.create_table(
        "manual_tasks",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("idempotency_key", sa.String(32), nullable=False),
        sa.Column("case_id", sa.Integer, nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("group_label", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("done_at", sa.BigInteger),
        sa.Column("done_by", sa.String(200)),
        sa.Column("note", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_manual_tasks"),
        sa.UniqueConstraint("idempotency_key", name="uq_manual_tasks_idempotency_key"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name="fk_manual_tasks_case_id_cases"),
    )
    op.create_index("ix_manual_tasks_status", "manual_tasks", ["status"])


def downgrade() -> None:
    for name in (
        "manual_tasks",
        "notifications",
        "directory_writes",
        "controls",
        "leases",
        "approved_keys",
        "plans",
        "case_events",
        "cases",
        "summary_state",
        "usage_monthly",
    ):
        op.drop_table(name)
