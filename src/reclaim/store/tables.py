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
