"""The audit log: who did what, when, from where. Append-only.

This module is the only code that touches ``audit_log``, and it has an insert and
reads: there is no update or delete path, on purpose. Every state-changing action of
the web app, the API and the admin CLI commands is recorded in the same transaction
as the change itself, so a change without its record cannot be committed.

``detail`` is a small JSON object for people reading the log; callers must never put
a secret in it (a token is named by its prefix, a password never appears).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Engine, select

from reclaim.store.web_tables import audit_log
from reclaim.web.paging import cursor_int, decode_cursor, encode_cursor

ActorKind = Literal["account", "token", "cli", "system"]


@dataclass(frozen=True)
class Actor:
    """Who acts: a signed-in account, an API token, the CLI (an OS user) or Reclaim."""

    name: str
    kind: ActorKind
    client_ip: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log."""

    id: int
    at: int
    actor: str
    actor_kind: str
    action: str
    target: str | None
    detail: dict[str, Any]
    client_ip: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able, with the time as ISO 8601 UTC."""
        return {
            "id": self.id,
            "at": dt.datetime.fromtimestamp(self.at, dt.UTC).isoformat().replace("+00:00", "Z"),
            "actor": self.actor,
            "actor_kind": self.actor_kind,
            "action": self.action,
            "target": self.target,
            "detail": self.detail,
            "client_ip": self.client_ip,
        }


def record(
    conn: Connection,
    actor: Actor,
    action: str,
    *,
    now: int,
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> int:
    """Append one entry; returns its id. Call it inside the transaction of the change."""
    result = conn.execute(
        audit_log.insert().values(
            at=now,
            actor=actor.name[:320],
            actor_kind=actor.kind,
            action=action,
            target=None if target is None else target[:500],
            detail=json.dumps(dict(detail or {}), default=str, sort_keys=True),
            client_ip=actor.client_ip,
        )
    )
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def entries(
    conn: Connection,
    *,
    limit: int,
    before_id: int | None = None,
    action: str | None = None,
    actor: str | None = None,
) -> list[AuditEntry]:
    """Newest first, ``limit`` entries older than ``before_id`` (keyset paging)."""
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(audit_log.c.id < before_id)
    if action:
        # A trailing dot selects a family: "usage." matches usage.upload, usage.…
        query = query.where(
            audit_log.c.action.startswith(action, autoescape=True)
            if action.endswith(".")
            else audit_log.c.action == action
        )
    if actor:
        query = query.where(audit_log.c.actor == actor)
    return [
        AuditEntry(
            id=row.id,
            at=row.at,
            actor=row.actor,
            actor_kind=row.actor_kind,
            action=row.action,
            target=row.target,
            detail=_detail(row.detail),
            client_ip=row.client_ip,
        )
        for row in conn.execute(query)
    ]


def page(
    engine: Engine, *, limit: int, cursor: str | None, action: str | None, actor: str | None
) -> tuple[list[AuditEntry], str | None]:
    """One page of entries and the cursor of the next page (None at the end)."""
    before = cursor_int(decode_cursor(cursor), "before")
    with engine.connect() as conn:
        # One row more than asked tells whether another page exists, without a count.
        rows = entries(conn, limit=limit + 1, before_id=before, action=action, actor=actor)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor({"before": rows[-1].id}) if more and rows else None


def _detail(text: str) -> dict[str, Any]:
    value = json.loads(text)
    return value if isinstance(value, dict) else {"value": value}
