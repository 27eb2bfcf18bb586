"""Tables for what the Entra directory sync remembers between rounds.

Defined on the shared ``metadata`` (``store/tables.py``); migration 0005 creates them.

- ``directory_groups``: per policy, its Entra group as last read (dynamic? synced from
  on-prem AD? which SKUs it grants) and the ``groups/delta`` link the next incremental
  round starts from.
- ``directory_members``: per policy, the group's user members by Entra object id.
  ``groups/delta`` reports removals by object id only, so this is how a removal finds
  the Reclaim user again without re-reading the whole group.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Integer, String, Table, Text

from reclaim.store.tables import metadata

directory_groups = Table(
    "directory_groups",
    metadata,
    Column("policy_id", Integer, ForeignKey("policies.id"), primary_key=True),
    Column("object_id", String(36), nullable=False),  # lower-case GUID
    Column("display_name", String(256), nullable=False),
    Column("is_dynamic", Boolean, nullable=False),
    Column("is_synced", Boolean, nullable=False),
    Column("sku_ids", Text, nullable=False),  # JSON list of the SKU ids the group grants
    Column("delta_link", Text),  # None: the next round is a full one
    Column("member_count", Integer, nullable=False),
    Column("direct_license_count", Integer, nullable=False),  # members also licensed directly
    Column("synced_at", BigInteger, nullable=False),
)

directory_members = Table(
    "directory_members",
    metadata,
    Column("policy_id", Integer, ForeignKey("policies.id"), primary_key=True),
    Column("object_id", String(36), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("granted_at", BigInteger),  # group-assigned license's lastUpdatedDateTime
    Column("direct_license", Boolean, nullable=False),
    Column("account_enabled", Boolean),  # None: Graph did not say
    Column("on_prem_synced", Boolean),  # the user is synced from on-prem AD
)
