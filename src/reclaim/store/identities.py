"""The ``identities`` table: reading it as a directory, and writing what a sync learned.

:class:`StoreDirectory` implements ``usage_sources.identity.Directory`` on an open
connection, so an import resolves SIDs inside its own transaction and sees identities
imported a moment before. Answers are cached for the directory's lifetime (one import,
one watch batch): a fleet names the same few thousand SIDs over and over.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from reclaim.store.identity_tables import identities
from reclaim.store.keys import resolve_keys
from reclaim.store.tables import users
from reclaim.usage_sources.identity import account_name, entra_object_id_of_sid

_BATCH = 900  # below SQLite's oldest 999-parameter limit


class StoreDirectory:
    """SIDs and account names → UPNs from the ``identities`` table (see module doc)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._sids: dict[str, str | None] = {}
        self._accounts: dict[str, str | None] = {}

    def user_for_sid(self, sid: str) -> str | None:
        """The UPN for ``sid`` (on-prem SID, or an Entra ``S-1-12-1-…`` SID), or None."""
        return self.users_for_sids([sid]).get(sid.upper())

    def users_for_sids(self, sids: Iterable[str]) -> dict[str, str]:
        """UPNs for many SIDs at once (keys upper-cased); unknown SIDs are left out."""
        wanted = {s.upper() for s in sids}
        missing = [s for s in wanted if s not in self._sids]
        for i in range(0, len(missing), _BATCH):
            part = missing[i : i + _BATCH]
            found = dict(self._query(identities.c.on_prem_sid, part))
            by_entra = {
                oid: s for s in part if s not in found and (oid := entra_object_id_of_sid(s))
            }
            if by_entra:
                for oid, upn in self._query(identities.c.entra_object_id, list(by_entra)):
                    found[by_entra[oid]] = upn
            for s in part:
                self._sids[s] = found.get(s)
        return {s: u for s in wanted if (u := self._sids.get(s)) is not None}

    def user_for_account(self, name: str) -> str | None:
        """The UPN for an account name (domain prefix ignored), or None (or if ambiguous)."""
        key = account_name(name)
        if key not in self._accounts:
            rows = list(self._query(identities.c.sam_account_name, [key]))
            # The same short name in two domains says nothing about who it is.
            self._accounts[key] = rows[0][1] if len(rows) == 1 else None
        return self._accounts[key]

    def _query(self, column: Any, keys: Sequence[str]) -> Iterable[tuple[str, str]]:
        stmt = (
            select(column, users.c.upn)
            .join(users, users.c.id == identities.c.user_id)
            .where(column.in_(keys))
        )
        return [(str(k), str(u)) for k, u in self.conn.execute(stmt)]


@dataclass(frozen=True)
class Identity:
    """One person's identifiers, as a directory or a file states them."""

    upn: str  # user_key(): trimmed, lower-case
    on_prem_sid: str | None = None  # upper-case
    entra_object_id: str | None = None  # lower-case
    sam_account_name: str | None = None  # lower-case, no domain


def upsert_identities(conn: Connection, rows: Sequence[Identity], *, source: str, now: int) -> int:
    """Store these identities (creating users as needed); returns how many were written.

    Values given replace what was stored; values left out (None) are kept. A SID or
    object id that moved to another user is taken off the previous one first: the last
    statement wins, and the unique constraints never see two owners.
    """
    if not rows:
        return 0
    found, _ = resolve_keys(conn, users=sorted({r.upn for r in rows}), apps={}, now=now)
    ids = dict(found)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    for r in rows:
        uid = ids[r.upn]
        for column, value in (
            (identities.c.on_prem_sid, r.on_prem_sid),
            (identities.c.entra_object_id, r.entra_object_id),
        ):
            if value is not None:
                conn.execute(
                    update(identities)
                    .where(column == value, identities.c.user_id != uid)
                    .values({column.name: None, "updated": now})
                )
        values = {
            "on_prem_sid": r.on_prem_sid,
            "entra_object_id": r.entra_object_id,
            "sam_account_name": r.sam_account_name,
        }
        given = {k: v for k, v in values.items() if v is not None}
        stmt = dialect.insert(identities).values(user_id=uid, source=source, updated=now, **values)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["user_id"], set_={**given, "source": source, "updated": now}
            )
        )
    return len(rows)
