"""Login rate limiting: too many failed sign-ins per account or per address → 429.

Failures are rows in ``login_failures`` (shared by every process of an installation,
unlike an in-memory counter). A key is blocked while it has ``max`` failures within
the last ``window`` seconds; ``Retry-After`` is when the oldest of those ages out.
The limit is checked *before* the password is verified, so a blocked attacker learns
nothing more, and a success clears the account's failures.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, select

from reclaim.store.web_tables import login_failures


@dataclass(frozen=True)
class LoginLimits:
    """At most ``per_account`` failures per account and ``per_ip`` per address per window."""

    window: int = 15 * 60
    per_account: int = 5
    per_ip: int = 20


def retry_after(
    conn: Connection, *, account: str, client_ip: str, now: int, limits: LoginLimits
) -> int | None:
    """Seconds to wait before trying again, or None when sign-in may be tried now."""
    waits = [
        _wait(conn, login_failures.c.account == account, limits.per_account, now, limits.window),
        _wait(conn, login_failures.c.client_ip == client_ip, limits.per_ip, now, limits.window),
    ]
    blocked = [w for w in waits if w is not None]
    return max(blocked) if blocked else None


def _wait(conn: Connection, where: object, most: int, now: int, window: int) -> int | None:
    times = [
        at
        for (at,) in conn.execute(
            select(login_failures.c.at)
            .where(where, login_failures.c.at > now - window)  # type: ignore[arg-type]
            .order_by(login_failures.c.at.desc())
            .limit(most)
        )
    ]
    if len(times) < most:
        return None
    # The most-th newest failure is the one that must age out to let one more try in.
    return max(1, times[-1] + window - now)


def record_failure(
    conn: Connection, *, account: str, client_ip: str, now: int, limits: LoginLimits
) -> None:
    """Count one failed sign-in, and forget failures older than the window."""
    conn.execute(
        login_failures.insert().values(at=now, account=account[:320], client_ip=client_ip[:64])
    )
    conn.execute(delete(login_failures).where(login_failures.c.at <= now - limits.window))


def clear_account(conn: Connection, account: str) -> None:
    """Forget an account's failures after it signed in."""
    conn.execute(delete(login_failures).where(login_failures.c.account == account))
