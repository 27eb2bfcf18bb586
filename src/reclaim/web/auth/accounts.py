"""Accounts: the people who sign in to the admin UI (local passwords or OIDC)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from reclaim.domain.names import user_key
from reclaim.store.web_tables import accounts
from reclaim.web import audit
from reclaim.web.auth.passwords import hash_password, needs_rehash
from reclaim.web.auth.roles import ACCOUNT_ROLES, Role


class AccountError(ValueError):
    """An account cannot be created or changed as asked."""


@dataclass(frozen=True)
class Account:
    """An account as the web app uses it (the password hash stays in the store)."""

    id: int
    email: str
    display_name: str
    role: Role
    active: bool
    session_epoch: int
    has_password: bool
    oidc_bound: bool
    created: int
    last_login: int | None


def _account(row: Any) -> Account:
    return Account(
        id=row.id,
        email=row.email,
        display_name=row.display_name,
        role=Role(row.role),
        active=bool(row.active),
        session_epoch=row.session_epoch,
        has_password=row.password_hash is not None,
        oidc_bound=row.oidc_subject is not None,
        created=row.created,
        last_login=row.last_login,
    )


def normalize_email(email: str) -> str:
    """The key an account is stored under: trimmed and lower-cased."""
    return user_key(email)


def create_account(
    conn: Connection,
    *,
    email: str,
    role: Role,
    password: str | None,
    actor: audit.Actor,
    now: int,
    display_name: str | None = None,
) -> Account:
    """Create an account (audited). ``password`` None: it signs in through OIDC only."""
    key = normalize_email(email)
    if "@" not in key or len(key) > 320:
        raise AccountError(f"{email!r} is not an e-mail address")
    if role not in ACCOUNT_ROLES:
        raise AccountError(f"role {role.value!r} is for API tokens, not for people")
    password_hash = hash_password(password) if password is not None else None
    try:
        with conn.begin_nested():
            result = conn.execute(
                accounts.insert().values(
                    email=key,
                    display_name=(display_name or key)[:200],
                    role=role.value,
                    password_hash=password_hash,
                    active=True,
                    session_epoch=1,
                    created=now,
                    updated=now,
                )
            )
    except IntegrityError:
        raise AccountError(f"an account for {key} exists already") from None
    account_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    audit.record(
        conn,
        actor,
        "account.create",
        now=now,
        target=key,
        detail={"role": role.value, "password": password is not None},
    )
    found = get_account(conn, account_id)
    assert found is not None
    return found


def get_account(conn: Connection, account_id: int) -> Account | None:
    """The account with this id."""
    row = conn.execute(select(accounts).where(accounts.c.id == account_id)).first()
    return None if row is None else _account(row)


def password_record(conn: Connection, email: str) -> tuple[Account | None, str | None]:
    """The account for ``email`` and its password hash (for sign-in only)."""
    row = conn.execute(select(accounts).where(accounts.c.email == normalize_email(email))).first()
    if row is None:
        return None, None
    return _account(row), row.password_hash


def list_accounts(conn: Connection) -> list[Account]:
    """Every account, by e-mail."""
    return [_account(r) for r in conn.execute(select(accounts).order_by(accounts.c.email))]


def count_admins(conn: Connection) -> int:
    """Active admin accounts."""
    rows = conn.execute(
        select(accounts.c.id).where(accounts.c.role == Role.ADMIN.value, accounts.c.active)
    )
    return len(rows.all())


def signed_in(conn: Connection, account: Account, *, now: int, password: str | None) -> None:
    """Record a sign-in; upgrade the password hash if its parameters are outdated."""
    values: dict[str, Any] = {"last_login": now}
    if password is not None:
        stored = conn.execute(
            select(accounts.c.password_hash).where(accounts.c.id == account.id)
        ).scalar()
        if stored and needs_rehash(stored):
            values["password_hash"] = hash_password(password)
    conn.execute(update(accounts).where(accounts.c.id == account.id).values(**values))


def find_by_oidc(conn: Connection, subject: str, email: str | None) -> Account | None:
    """The account bound to ``subject``; else one with ``email`` not bound yet (bind it).

    Binding on first use means a later change of the e-mail claim in the directory
    cannot move someone's sign-in onto another account.
    """
    row = conn.execute(select(accounts).where(accounts.c.oidc_subject == subject)).first()
    if row is not None:
        return _account(row)
    if not email:
        return None
    row = conn.execute(
        select(accounts).where(
            accounts.c.email == normalize_email(email), accounts.c.oidc_subject.is_(None)
        )
    ).first()
    if row is None:
        return None
    conn.execute(update(accounts).where(accounts.c.id == row.id).values(oidc_subject=subject))
    return _account(row)
