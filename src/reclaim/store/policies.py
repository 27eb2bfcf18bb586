"""Keeping the store's copy of policies in step with the configuration file.

The config file is the source of truth; the store keeps a copy so that cases,
memberships and reports can refer to a policy by id, and so that a policy removed
from the file is remembered (disabled), not forgotten along with its history.
"""

from __future__ import annotations

from sqlalchemy import Connection, select, update

from reclaim.domain.policy import Policy
from reclaim.store.tables import policies


def sync_policies(conn: Connection, configured: tuple[Policy, ...], *, now: int) -> dict[str, int]:
    """Upsert every configured policy; disable stored ones no longer configured.

    Returns policy name → id for the configured policies.
    """
    stored = {row.name: row for row in conn.execute(select(policies))}
    ids: dict[str, int] = {}
    for policy in configured:
        definition = policy.model_dump_json()
        row = stored.get(policy.name)
        if row is None:
            result = conn.execute(
                policies.insert().values(
                    name=policy.name, definition=definition, enabled=policy.enabled, updated=now
                )
            )
            ids[policy.name] = int(result.inserted_primary_key[0])  # type: ignore[index]
            continue
        ids[policy.name] = int(row.id)
        if row.definition != definition or bool(row.enabled) != policy.enabled:
            conn.execute(
                update(policies)
                .where(policies.c.id == row.id)
                .values(definition=definition, enabled=policy.enabled, updated=now)
            )
    gone = [row.id for name, row in stored.items() if name not in ids and row.enabled]
    if gone:
        conn.execute(
            update(policies).where(policies.c.id.in_(gone)).values(enabled=False, updated=now)
        )
    return ids


def policy_id(conn: Connection, name: str) -> int | None:
    """The stored id of the policy called ``name``, if any."""
    found = conn.execute(select(policies.c.id).where(policies.c.name == name)).scalar()
    return None if found is None else int(found)
