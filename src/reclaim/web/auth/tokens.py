"""API tokens: ``rcl_`` + 32 random bytes, shown once, stored only as a SHA-256 hash.

A token is a random 256-bit value, so a plain SHA-256 (not a slow password hash) is
the right store: nobody can guess their way to a preimage, and a lookup by hash is one
index probe per request. The first characters are kept as ``prefix`` so that a
person can tell tokens apart in a list and in the audit log.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import OperationalError

from reclaim.store.web_tables import api_tokens
from reclaim.web import audit
from reclaim.web.auth.roles import Role

log = logging.getLogger("reclaim.web")

TOKEN_PREFIX = "rcl_"  # noqa: S105 (a marker, not a secret)
_SHOWN = 8  # random characters kept in ``prefix``
LAST_USED_EVERY = 60  # seconds: a busy token is not a database write per request


class TokenError(ValueError):
    """A token cannot be created or revoked as asked."""


@dataclass(frozen=True)
class ApiToken:
    """A stored token (never the secret itself)."""

    id: int
    name: str
    prefix: str
    role: Role
    created: int
    created_by: str
    expires: int | None
    last_used: int | None
    revoked: int | None

    def label(self) -> str:
        """How the token is named in the audit log: its name and prefix."""
        return f"{self.name} ({self.prefix}…)"

    def usable(self, now: int) -> bool:
        """Not revoked and not expired at ``now``."""
        return self.revoked is None and (self.expires is None or now < self.expires)


def _token(row: Any) -> ApiToken:
    return ApiToken(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        role=Role(row.role),
        created=row.created,
        created_by=row.created_by,
        expires=row.expires,
        last_used=row.last_used,
        revoked=row.revoked,
    )


def token_hash(token: str) -> str:
    """The SHA-256 (hex) stored for ``token``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(
    conn: Connection,
    *,
    name: str,
    role: Role,
    actor: audit.Actor,
    now: int,
    expires: int | None = None,
) -> tuple[ApiToken, str]:
    """Create a token (audited); returns it and the secret, which is never stored."""
    name = name.strip()
    if not name or len(name) > 100:
        raise TokenError("a token needs a name of 1 to 100 characters")
    secret = TOKEN_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    prefix = secret[: len(TOKEN_PREFIX) + _SHOWN]
    result = conn.execute(
        api_tokens.insert().values(
            name=name,
            prefix=prefix,
            token_hash=token_hash(secret),
            role=role.value,
            created=now,
            created_by=actor.name,
            expires=expires,
        )
    )
    token_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    token = get_token(conn, token_id)
    assert token is not None
    audit.record(
        conn,
        actor,
        "token.create",
        now=now,
        target=token.label(),
        detail={"id": token_id, "role": role.value, "expires": expires},
    )
    return token, secret


def get_token(conn: Connection, token_id: int) -> ApiToken | None:
    """The token with this id."""
    row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).first()
    return None if row is None else _token(row)


def list_tokens(conn: Connection, *, include_revoked: bool = True) -> list[ApiToken]:
    """Tokens, newest first."""
    query = select(api_tokens).order_by(api_tokens.c.id.desc())
    if not include_revoked:
        query = query.where(api_tokens.c.revoked.is_(None))
    return [_token(r) for r in conn.execute(query)]


def authenticate(conn: Connection, presented: str, *, now: int) -> ApiToken | None:
    """The usable token matching ``presented``, or None. Reads only."""
    if not presented.startswith(TOKEN_PREFIX) or len(presented) > 200:
        return None
    row = conn.execute(
        select(api_tokens).where(api_tokens.c.token_hash == token_hash(presented))
    ).first()
    if row is None:
        return None
    token = _token(row)
    return token if token.usable(now) else None


def needs_touch(token: ApiToken, now: int) -> bool:
    """Whether ``last_used`` is old enough to be worth a write."""
    return token.last_used is None or now - token.last_used >= LAST_USED_EVERY


def touch(engine: Engine, token_id: int, *, now: int) -> None:
    """Record a use of the token. Best effort: it must never fail or slow a request.

    Called after the response is sent. On SQLite a long import holds the one write
    lock; then this waits for it, outside any request, or gives up.
    """
    try:
        with engine.begin() as conn:
            conn.execute(
                update(api_tokens)
                .where(api_tokens.c.id == token_id, api_tokens.c.last_used.is_distinct_from(now))
                .values(last_used=now)
            )
    except OperationalError as exc:  # locked, or the store went away: the next use retries
        log.warning("could not record the use of API token #%s: %s", token_id, exc.orig)


def revoke_token(conn: Connection, token_id: int, *, actor: audit.Actor, now: int) -> ApiToken:
    """Revoke a token (audited). Revoking a revoked token is an error, not a no-op."""
    token = get_token(conn, token_id)
    if token is None:
        raise TokenError(f"no token with id {token_id}")
    if token.revoked is not None:
        raise TokenError(f"token {token_id} ({token.prefix}…) is revoked already")
    conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(revoked=now))
    audit.record(
        conn, actor, "token.revoke", now=now, target=token.label(), detail={"id": token_id}
    )
    revoked = get_token(conn, token_id)
    assert revoked is not None
    return revoked
