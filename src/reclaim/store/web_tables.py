"""Tables for the web app and API: who may sign in, API tokens, the audit log, and the
bookkeeping behind idempotent uploads and login rate limiting.

Defined on the shared ``metadata`` (``store/tables.py``); migration 0004 creates them.
Times are epoch seconds (UTC), as everywhere in the store.

- ``accounts``: people who sign in to the admin UI. ``password_hash`` is argon2id, or
  NULL for an account that signs in only through OpenID Connect. ``oidc_subject``
  (``issuer|sub``) is bound at the first OIDC sign-in, so later sign-ins do not depend
  on the e-mail claim, which the directory lets people change. ``session_epoch`` is
  copied into each session cookie; bumping it (password change, disabling) ends every
  session of that account at once.
- ``api_tokens``: only the SHA-256 of a token is kept, with its first characters
  (``prefix``) so a person can tell tokens apart in a list. A revoked token keeps its
  row (``revoked`` set) so the audit log can still name it.
- ``audit_log``: append-only. The code has an insert and reads, and no update or delete
  path (``reclaim.web.audit``).
- ``idempotency_keys``: the stored response of an upload sent with an
  ``Idempotency-Key``, per principal and endpoint. ``status_code`` NULL means the first
  request with this key is still running.
- ``login_failures``: failed sign-ins per account key and client address, read by the
  rate limiter and pruned after its window.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from reclaim.store.tables import metadata

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),  # lower-cased
    Column("display_name", String(200), nullable=False),
    Column("role", String(20), nullable=False),  # viewer | operator | admin
    Column("password_hash", Text),  # argon2id; NULL: OpenID Connect only
    Column("oidc_subject", String(500), unique=True),  # "issuer|sub", bound at first use
    Column("active", Boolean, nullable=False),
    Column("session_epoch", Integer, nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
    Column("last_login", BigInteger),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("prefix", String(16), nullable=False),  # "rcl_" + first characters, for display
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256 hex
    Column("role", String(20), nullable=False),  # viewer | operator | admin | ingest
    Column("created", BigInteger, nullable=False),
    Column("created_by", String(320), nullable=False),
    Column("expires", BigInteger),
    Column("last_used", BigInteger),
    Column("revoked", BigInteger),
)
Index("ix_api_tokens_prefix", api_tokens.c.prefix)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", BigInteger, nullable=False),
    Column("actor", String(320), nullable=False),
    Column("actor_kind", String(10), nullable=False),  # account | token | cli | system
    Column("action", String(60), nullable=False),  # e.g. usage.upload, token.revoke
    Column("target", String(500)),
    Column("detail", Text, nullable=False),  # JSON object
    Column("client_ip", String(64)),
)
Index("ix_audit_log_at", audit_log.c.at)
Index("ix_audit_log_action", audit_log.c.action)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("principal", String(100), primary_key=True),  # "token:7", "account:3"
    Column("endpoint", String(100), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer),  # NULL while the first request is in flight
    Column("response", Text),  # JSON body of the first response
    Column("created", BigInteger, nullable=False),
)
Index("ix_idempotency_keys_created", idempotency_keys.c.created)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", BigInteger, nullable=False),
    Column("account", String(320), nullable=False),  # the e-mail as typed, lower-cased
    Column("client_ip", String(64), nullable=False),
)
Index("ix_login_failures_account", login_failures.c.account)
Index("ix_login_failures_client_ip", login_failures.c.client_ip)
Index("ix_login_failures_at", login_failures.c.at)
