"""The ``login_links`` table: one-time sign-in links (``reclaim accounts login-link``).

A link is a signed token that carries a random nonce; only the nonce's SHA-256 is kept
here, so a copy of the store cannot be turned back into a working link. ``used`` is
set by the one statement that redeems a link (``UPDATE … WHERE used IS NULL``), which
is what makes a link single-use even when two browsers open it at the same moment.
Rows are pruned a day after they expire. Migration 0007 creates the table.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table

from reclaim.store.tables import metadata

login_links = Table(
    "login_links",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("nonce_hash", String(64), nullable=False, unique=True),  # SHA-256 hex
    Column("account_id", Integer, nullable=False),  # accounts.id
    Column("created", BigInteger, nullable=False),
    Column("created_by", String(320), nullable=False),
    Column("expires", BigInteger, nullable=False),
    Column("used", BigInteger),  # NULL until redeemed
    Column("used_from", String(64)),  # the client address that redeemed it
)
Index("ix_login_links_expires", login_links.c.expires)
