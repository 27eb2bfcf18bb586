"""One-time sign-in links: ``reclaim accounts login-link EMAIL`` and the demo's admin link.

A link is ``{base}/login/link?token=…``. The token is the JSON ``{"a": account id,
"n": random nonce, "x": expiry}`` signed with the web secret (itsdangerous, its own
salt, so a session cookie can never pass for a link or the other way round). It is:

- **signed**: any change to any part, or a token from another secret, is refused;
- **bound to one account**: the account id is inside the signature and must match the
  stored row, so a link cannot be turned into a sign-in for anyone else;
- **short-lived**: the expiry is checked on the token and on the stored row
  (:data:`DEFAULT_MINUTES`, at most :data:`MAX_MINUTES`);
- **single-use**: only the nonce's SHA-256 is stored (``store.login_links``) and the
  first use marks it used in one conditional ``UPDATE``; any later use is refused.

Only accounts with a local password get links: an account that signs in through
OpenID Connect only must not gain a way round its provider's checks (MFA,
conditional access). Creating and redeeming a link, and every refused attempt with a
genuine signature, go to the audit log; the token itself never does.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import Connection, Engine, delete, select, update

from reclaim.store.login_links import login_links
from reclaim.web import audit
from reclaim.web.auth import accounts
from reclaim.web.auth.accounts import Account

DEFAULT_MINUTES = 15
MAX_MINUTES = 60
PATH = "/login/link"
_SALT = "reclaim.web.login-link.v1"
_MAX_TOKEN_CHARS = 1024  # far above a real token; bounds the work done on junk
_PRUNE_AFTER = 86400  # expired rows are kept a day, for anyone reading the table

Reason = Literal["invalid", "expired", "used", "disabled"]


class LoginLinkError(ValueError):
    """A link cannot be created as asked (the message says why)."""


class LinkRefused(Exception):
    """A link was not accepted; ``reason`` says which check failed (safe to show)."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason)
        self.reason: Reason = reason


@dataclass(frozen=True)
class LoginLink:
    """A link as created: for whom, until when, and its URL (shown once)."""

    id: int
    email: str
    expires: int
    url: str


def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=_SALT)


def _digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def create_login_link(
    conn: Connection,
    *,
    email: str,
    secret: str,
    base_url: str,
    actor: audit.Actor,
    now: int,
    minutes: int = DEFAULT_MINUTES,
) -> LoginLink:
    """Create a link for the local account ``email`` (audited); its URL is shown once."""
    if not 1 <= minutes <= MAX_MINUTES:
        raise LoginLinkError(f"a link lasts 1 to {MAX_MINUTES} minutes (got {minutes})")
    if not base_url.startswith(("http://", "https://")):
        raise LoginLinkError(f"{base_url!r} is not an http:// or https:// address")
    account, stored_hash = accounts.password_record(conn, email)
    if account is None:
        raise LoginLinkError(f"no account for {accounts.normalize_email(email)}")
    if not account.active:
        raise LoginLinkError(f"the account {account.email} is disabled")
    if stored_hash is None:
        raise LoginLinkError(
            f"{account.email} signs in through single sign-on only; a link would bypass "
            "the provider's checks"
        )
    nonce = secrets.token_urlsafe(24)
    expires = now + minutes * 60
    conn.execute(delete(login_links).where(login_links.c.expires < now - _PRUNE_AFTER))
    result = conn.execute(
        login_links.insert().values(
            nonce_hash=_digest(nonce),
            account_id=account.id,
            created=now,
            created_by=actor.name[:320],
            expires=expires,
        )
    )
    link_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    audit.record(
        conn,
        actor,
        "account.login_link",
        now=now,
        target=account.email,
        detail={"link": link_id, "minutes": minutes},
    )
    token = _serializer(secret).dumps({"a": account.id, "n": nonce, "x": expires})
    url = f"{base_url.rstrip('/')}{PATH}?{urlencode({'token': token})}"
    return LoginLink(link_id, account.email, expires, url)


def _claims(secret: str, token: str) -> tuple[int, str, int]:
    """Account id, nonce and expiry of a genuine token; ``invalid`` otherwise."""
    if not token or len(token) > _MAX_TOKEN_CHARS:
        raise LinkRefused("invalid")
    try:
        data: Any = _serializer(secret).loads(token)
    except BadSignature:
        raise LinkRefused("invalid") from None
    if not isinstance(data, dict):
        raise LinkRefused("invalid")
    account_id, nonce, expires = data.get("a"), data.get("n"), data.get("x")
    if not (isinstance(account_id, int) and isinstance(nonce, str) and isinstance(expires, int)):
        raise LinkRefused("invalid")
    return account_id, nonce, expires


def redeem_login_link(
    engine: Engine, token: str, *, secret: str, now: int, client_ip: str
) -> Account:
    """The account a link signs in, marking the link used; :class:`LinkRefused` if not.

    Refusals of genuine links (used, expired, disabled account) are audited; a token
    whose signature fails is not ours, and is only refused.
    """
    account_id, nonce, expires = _claims(secret, token)
    digest = _digest(nonce)
    reason: Reason | None = None
    with engine.begin() as conn:
        account = accounts.get_account(conn, account_id)
        if account is None:
            raise LinkRefused("invalid")
        if not account.active:
            reason = "disabled"
        elif expires <= now:
            reason = "expired"
        else:
            redeemed = conn.execute(
                update(login_links)
                .where(
                    login_links.c.nonce_hash == digest,
                    login_links.c.account_id == account.id,
                    login_links.c.used.is_(None),
                    login_links.c.expires > now,
                )
                .values(used=now, used_from=client_ip[:64])
            )
            if redeemed.rowcount == 1:
                link_id = conn.execute(
                    select(login_links.c.id).where(login_links.c.nonce_hash == digest)
                ).scalar_one()
                accounts.signed_in(conn, account, now=now, password=None)
                audit.record(
                    conn,
                    _actor(account, client_ip),
                    "auth.login",
                    now=now,
                    detail={"method": "login_link", "link": link_id},
                )
                return account
            reason = _why_not(conn, digest, account.id)
    with engine.begin() as conn:
        audit.record(
            conn,
            _actor(account, client_ip),
            "auth.login_failed",
            now=now,
            detail={"method": "login_link", "reason": reason},
        )
    raise LinkRefused(reason)


def _why_not(conn: Connection, digest: str, account_id: int) -> Reason:
    row = conn.execute(
        select(login_links.c.account_id, login_links.c.used).where(
            login_links.c.nonce_hash == digest
        )
    ).first()
    if row is None or row.account_id != account_id:
        return "invalid"  # signed, but not issued by this store (another installation)
    return "used" if row.used is not None else "expired"


def _actor(account: Account, client_ip: str) -> audit.Actor:
    return audit.Actor(name=account.email, kind="account", client_ip=client_ip)
