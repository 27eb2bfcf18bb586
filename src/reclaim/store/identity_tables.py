"""Tables for who is who across directories, and for what usage sources remember.

Defined on the shared ``metadata`` (``store/tables.py``); migration 0003 creates them.

- ``identities``: per user, the identifiers other systems know them by. Endpoint
  telemetry names people by Windows SID (``S-1-5-21-…`` from on-prem AD, ``S-1-12-1-…``
  for Entra-joined devices, which encodes the Entra object id) or by account name,
  never by UPN. Filled by ``reclaim identities import`` today, by the Entra / AD
  directory sync later.
- ``source_state``: small JSON values a usage source keeps between runs, in the same
  transaction as the usage they describe: a watched log's offset, a Graph pull's
  watermark, per-source counters the ``sources`` table has no column for.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text

from reclaim.store.tables import metadata

identities = Table(
    "identities",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
    Column("on_prem_sid", String(200), unique=True),  # upper-case, "S-1-5-21-…"
    Column("entra_object_id", String(36), unique=True),  # lower-case GUID
    Column("sam_account_name", String(256)),  # lower-case; not unique across domains
    Column("source", String(20), nullable=False),  # file | entra | ad: who said so last
    Column("updated", BigInteger, nullable=False),
)
Index("ix_identities_sam_account_name", identities.c.sam_account_name)

source_state = Table(
    "source_state",
    metadata,
    Column("source_id", Integer, ForeignKey("sources.id"), primary_key=True),
    Column("key", String(1000), primary_key=True),  # e.g. "watch:/var/log/…", "graph:signins:…"
    Column("value", Text, nullable=False),  # JSON
    Column("updated", BigInteger, nullable=False),
)
