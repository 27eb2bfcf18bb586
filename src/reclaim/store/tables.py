"""Table definitions (SQLAlchemy Core). Migrations in ``migrations/`` create them.

Days are stored as integers: days since 1970-01-01 (UTC). Times are integers:
seconds since the epoch (UTC). Both are compact, identical on SQLite and PostgreSQL,
and make window arithmetic ("used within 30 days") plain integer comparisons.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# Naming convention so Alembic migrations name constraints the same on both databases.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("upn", String(320), nullable=False, unique=True),  # user_key(): lower-cased UPN
    Column("first_seen", BigInteger, nullable=False),
)

apps = Table(
    "apps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(400), nullable=False, unique=True),  # app_key(): lower-cased name
    Column("name", String(400), nullable=False),  # the spelling first seen, for display
)

sources = Table(
    "sources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("kind", String(40), nullable=False),
    Column("last_received", BigInteger),
    Column("rows_accepted", BigInteger, nullable=False, default=0),
    Column("rows_rejected", BigInteger, nullable=False, default=0),
)

imports = Table(
    "imports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source_id", Integer, ForeignKey("sources.id"), nullable=False),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("size", BigInteger, nullable=False),  # bytes; a different size is a different file
    Column("file_name", Text, nullable=False),
    Column("format", String(20), nullable=False),
    Column("started", BigInteger, nullable=False),
    Column("finished", BigInteger, nullable=False),
    Column("rows_accepted", BigInteger, nullable=False),
    Column("rows_rejected", BigInteger, nullable=False),
)

# One row per (user, app, day): the daily roll-up every usage source feeds.
# The roll-up tables carry no foreign keys on purpose: only the importer writes them,
# with ids it has just looked up, and per-row key checks would cost the bulk path dearly.
#
# The key starts with the day: usage arrives roughly in time order, so new rows land
# at the end of the B-tree instead of all over it (measured ~3x faster imports on
# SQLite), and "seconds within the last N days" is one contiguous range scan.
usage_daily = Table(
    "usage_daily",
    metadata,
    Column("day", Integer, primary_key=True),
    Column("user_id", Integer, primary_key=True),
    Column("app_id", Integer, primary_key=True),
    Column("seconds", BigInteger, nullable=False),
    Column("events", BigInteger, nullable=False),
    Column("first_seen", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# Which days a user was observed by a source at all (any app): one row per
# (user, source, month) with a bit per day. This is what tells "no use" from
# "no data", at a thirtieth of the rows a row-per-day table would need.
usage_observed = Table(
    "usage_observed",
    metadata,
    Column("user_id", Integer, primary_key=True),
    Column("source_id", Integer, primary_key=True),
    Column("month", Integer, primary_key=True),  # year * 12 + (month - 1)
    Column("days_mask", BigInteger, nullable=False),  # bit d-1 set: observed on day d
    Column("last_day", Integer, nullable=False),
    sqlite_with_rowid=False,
)

# Kept current at import so that decisions read one row per (user, app), not a scan.
usage_latest = Table(
    "usage_latest",
    metadata,
    Column("user_id", Integer, primary_key=True),
    Column("app_id", Integer, primary_key=True),
    Column("first_day", Integer, nullable=False),
    Column("last_day", Integer, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

policies = Table(
    "policies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("definition", Text, nullable=False),  # the validated policy as JSON
    Column("enabled", Boolean, nullable=False),
    Column("updated", BigInteger, nullable=False),
)

# Who is in each policy's license group, and since when.
memberships = Table(
    "memberships",
    metadata,
    Column("policy_id", Integer, ForeignKey("policies.id"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("granted_at", BigInteger),  # best known grant time, see granted_source
    Column("granted_source", String(20), nullable=False),  # directory | file | first_seen
    Column("first_seen", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("left_at", BigInteger),
)

Index("ix_memberships_user", memberships.c.user_id)

# -- decisions (migration 0002) -----------------------------------------------------------

# Per (user, app, month): seconds of use in total and per day of the month, and a bit
# per day of use (a use may carry no duration). Kept current by
# ``store.summaries.update_usage_summaries`` beside every write to usage_daily, so a
# decision reads one row per (user, app, month) for any window, exact to the day,
# instead of scanning daily roll-ups. Zero days cost one byte on SQLite.
DAY_COLUMNS = tuple(f"d{d:02d}" for d in range(1, 32))
usage_monthly = Table(
    "usage_monthly",
    metadata,
    Column("user_id", Integer, primary_key=True),
    Column("app_id", Integer, primary_key=True),
    Column("month", Integer, primary_key=True),  # year * 12 + (month - 1)
    Column("seconds", BigInteger, nullable=False),
    Column("days_mask", BigInteger, nullable=False),  # bit d-1 set: used on day d
    *(Column(name, Integer, nullable=False) for name in DAY_COLUMNS),
    sqlite_with_rowid=False,
)

# Watermarks of derived tables: ``events`` is how many accepted usage events the
# summary reflects; it must equal sum(sources.rows_accepted) or the summary is stale.
# Rows ``memberships:<policy id>`` count changes of a policy's members instead
# (services/members_import.py), for the pages' cache keys (web/savings_cache.py).
summary_state = Table(
    "summary_state",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("events", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
)

# One reclamation case per (policy, user, cycle); the state machine is domain/case.py.
cases = Table(
    "cases",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("policy_id", Integer, ForeignKey("policies.id"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("cycle", Integer, nullable=False),
    Column("state", String(30), nullable=False),
    Column("status", String(20), nullable=False),
    Column("outcome", String(20)),
    Column("is_open", Boolean, nullable=False),
    Column("verdict", String(20), nullable=False),  # the verdict that opened the case
    Column("reason", Text, nullable=False),
    Column("last_used", Integer),  # day, as known when the case opened
    Column("asked_at", BigInteger),
    Column("answered_at", BigInteger),
    Column("reminders_sent", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),  # removal writes sent
    Column("retry_at", BigInteger),
    Column("failures", Integer, nullable=False),  # consecutive failed tries of the due step
    Column("last_error", Text),
    Column("remove_key", String(32), nullable=False),  # idempotency key of the removal
    Column("authorized_key", String(32)),  # the side effect a plan allowed (ask or remove)
    Column("plan_id", Integer),  # the plan that allowed it
    Column("next_due_at", BigInteger),  # NULL: nothing to do until a plan or a person acts
    Column("lease_owner", String(100)),
    Column("lease_until", BigInteger),
    Column("version", Integer, nullable=False),  # optimistic concurrency: bumped on save
    Column("opened_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("closed_at", BigInteger),
    UniqueConstraint("policy_id", "user_id", "cycle", name="uq_cases_policy_user_cycle"),
)
Index("ix_cases_next_due_at", cases.c.next_due_at)
Index("ix_cases_state", cases.c.state)  # the dashboard's failed cases, lists by state
Index("ix_cases_remove_key", cases.c.remove_key)
# At most one open case per (policy, user): the database refuses a second one.
Index(
    "uq_cases_open",
    cases.c.policy_id,
    cases.c.user_id,
    unique=True,
    sqlite_where=cases.c.is_open.is_(True),
    postgresql_where=cases.c.is_open.is_(True),
)

# The case's history, append-only: every transition with its time, cause and data.
case_events = Table(
    "case_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("case_id", Integer, ForeignKey("cases.id"), nullable=False),
    Column("seq", Integer, nullable=False),  # 0 for the opening event
    Column("at", BigInteger, nullable=False),
    Column("from_state", String(30)),
    Column("to_state", String(30), nullable=False),
    Column("cause", String(40), nullable=False),
    Column("data", Text, nullable=False),  # JSON
    UniqueConstraint("case_id", "seq", name="uq_case_events_case_id"),
)

plans = Table(
    "plans",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(10), nullable=False),  # preview | run
    Column("policies", Text, nullable=False),  # comma-separated names, for listing
    Column("as_of", Integer, nullable=False),  # day
    Column("created_at", BigInteger, nullable=False),
    Column("content", Text, nullable=False),  # Plan.to_dict() as JSON
    Column("content_hash", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("decided_by", String(200)),
    Column("decided_at", BigInteger),
    Column("note", Text),
)

# Removal idempotency keys an admin approved (for policies with require_approval).
approved_keys = Table(
    "approved_keys",
    metadata,
    Column("idempotency_key", String(32), primary_key=True),
    Column("plan_id", Integer, ForeignKey("plans.id"), nullable=False),
    Column("approved_at", BigInteger, nullable=False),
)

# Named leases: one scheduler tick per policy, whichever worker gets there first.
leases = Table(
    "leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("owner", String(100)),
    Column("until", BigInteger, nullable=False),
    Column("tick_claimed", BigInteger, nullable=False),  # the cron time being run
    Column("tick_done", BigInteger, nullable=False),  # the last cron time completed
)

# Operational switches shared by every process (``paused``: the kill switch).
controls = Table(
    "controls",
    metadata,
    Column("key", String(40), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated", BigInteger, nullable=False),
    Column("updated_by", String(200), nullable=False),
)

# Every directory write, recorded *before* it is sent: the proof that a key was used
# once, and what a retry after a crash reads to tell "sent" from "never sent".
directory_writes = Table(
    "directory_writes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("idempotency_key", String(32), nullable=False, unique=True),
    Column("case_id", Integer, ForeignKey("cases.id"), nullable=False),
    Column("plan_id", Integer),
    Column("action", String(20), nullable=False),
    Column("workflow", String(20), nullable=False),
    Column("sends", Integer, nullable=False),  # how many times it was handed to the directory
    Column("sent_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger),
    Column("result", String(20), nullable=False),  # sending | done | already_done | queued | …
    Column("detail", Text),
)
Index("ix_directory_writes_plan_id", directory_writes.c.plan_id)
Index("ix_directory_writes_case_id", directory_writes.c.case_id)  # a case page's writes

# Questions to employees, recorded for the campaign channels to deliver (an outbox).
notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("idempotency_key", String(32), nullable=False, unique=True),
    Column("case_id", Integer, ForeignKey("cases.id"), nullable=False),
    Column("kind", String(10), nullable=False),  # ask | remind
    Column("reminder", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("status", String(20), nullable=False),  # recorded | sent | failed
    Column("channel", String(20)),
)
Index("ix_notifications_case_id", notifications.c.case_id)  # a case page's questions

# The manual workflow: removals a person carries out, then marks done.
manual_tasks = Table(
    "manual_tasks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("idempotency_key", String(32), nullable=False, unique=True),
    Column("case_id", Integer, ForeignKey("cases.id"), nullable=False),
    Column("action", String(20), nullable=False),
    Column("group_label", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("status", String(20), nullable=False),  # open | done | cancelled
    Column("done_at", BigInteger),
    Column("done_by", String(200)),
    Column("note", Text),
)
Index("ix_manual_tasks_status", manual_tasks.c.status)
Index("ix_manual_tasks_case_id", manual_tasks.c.case_id)  # a case page's tasks
