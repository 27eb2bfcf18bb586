"""Password sign-in: rate limit, verify, record — one service for the page and tests."""

from __future__ import annotations

from sqlalchemy import Engine

from reclaim.web import audit
from reclaim.web.auth import accounts, ratelimit
from reclaim.web.auth.accounts import Account
from reclaim.web.auth.passwords import verify_password


class SignInRefused(Exception):
    """Wrong e-mail or password, or a disabled account: one message for all three."""


class RateLimited(Exception):
    """Too many failures; try again in ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after} s")
        self.retry_after = retry_after


def password_sign_in(
    engine: Engine,
    *,
    email: str,
    password: str,
    client_ip: str,
    now: int,
    limits: ratelimit.LoginLimits,
) -> Account:
    """The account for these credentials; refusals are counted and audited."""
    key = accounts.normalize_email(email)[:320]
    with engine.connect() as conn:
        wait = ratelimit.retry_after(conn, account=key, client_ip=client_ip, now=now, limits=limits)
        if wait is not None:
            raise RateLimited(wait)
        account, stored = accounts.password_record(conn, key)
    # Verified outside any transaction: argon2 takes tens of milliseconds, and SQLite
    # has one writer.
    good = verify_password(stored, password)
    actor = audit.Actor(name=key or "(empty)", kind="account", client_ip=client_ip)
    refused = not good or account is None or not account.active
    with engine.begin() as conn:
        if refused:
            ratelimit.record_failure(conn, account=key, client_ip=client_ip, now=now, limits=limits)
            reason = "disabled" if account is not None and good else "bad_credentials"
            audit.record(conn, actor, "auth.login_failed", now=now, detail={"reason": reason})
        else:
            assert account is not None
            ratelimit.clear_account(conn, key)
            accounts.signed_in(conn, account, now=now, password=password)
            audit.record(conn, actor, "auth.login", now=now, detail={"method": "password"})
    # Raised only after the commit: the failure must be counted, not rolled back.
    if refused or account is None:
        raise SignInRefused("wrong e-mail address or password")
    return account
