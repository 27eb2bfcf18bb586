"""Indexes for looking up one case's rows and cases by state.

A case page reads the case's directory writes, questions and manual tasks by
``case_id``, and the dashboard counts failed cases at every view: without these each
read every row of its table (40-95 ms at 455,000 cases, bench/web_scale.py).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_cases_state", "cases", "state"),
    ("ix_directory_writes_case_id", "directory_writes", "case_id"),
    ("ix_notifications_case_id", "notifications", "case_id"),
    ("ix_manual_tasks_case_id", "manual_tasks", "case_id"),
)


def upgrade() -> None:
    for name, table, column in _INDEXES:
        op.create_index(name, table, [column])


def downgrade() -> None:
    for name, table, _ in _INDEXES:
        op.drop_index(name, table_name=table)
