"""Browser sessions in a signed cookie (itsdangerous), HttpOnly and SameSite=Lax.

The cookie holds a small JSON object signed with the web secret: a random session id,
the CSRF token, when it was issued, and, once signed in, the account id and the
account's ``session_epoch``. Nothing in it is secret, but nothing in it can be changed
without the secret either.

- Sign-in always issues a *new* session (new id, new CSRF token), so a session value
  planted in a browser before sign-in is worthless afterwards (session fixation).
- A session ends after ``session_hours`` from sign-in (absolute, not sliding), at sign
  out (the cookie is deleted), or for every browser at once when the account's
  ``session_epoch`` is bumped (disabled account, password change).
- ``Secure`` is set whenever the request came over https (directly or through a proxy
  that uvicorn trusts), so the cookie is never sent back over plain http.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from starlette.requests import HTTPConnection
from starlette.responses import Response

COOKIE = "reclaim_session"
_SALT = "reclaim.web.session.v1"


@dataclass
class Session:
    """What a browser carries between requests."""

    sid: str
    csrf: str
    issued: int
    account_id: int | None = None
    epoch: int = 0
    oidc: dict[str, str] | None = field(default=None)  # state, nonce, verifier, next

    @property
    def signed_in(self) -> bool:
        """Whether this session belongs to an account."""
        return self.account_id is not None


def new_session(*, now: int, account_id: int | None = None, epoch: int = 0) -> Session:
    """A fresh session: new id and new CSRF token, never carried over from an old one."""
    return Session(
        sid=secrets.token_urlsafe(16),
        csrf=secrets.token_urlsafe(32),
        issued=now,
        account_id=account_id,
        epoch=epoch,
    )


class SessionCodec:
    """Signs and checks session cookies with the web secret."""

    def __init__(self, secret: str, *, max_age_seconds: int) -> None:
        self._serializer = URLSafeSerializer(secret, salt=_SALT)
        self.max_age = max_age_seconds

    def dumps(self, session: Session) -> str:
        """The cookie value for ``session``."""
        return str(self._serializer.dumps(asdict(session)))

    def loads(self, value: str | None, *, now: int) -> Session | None:
        """The session in a cookie value, or None if it is absent, forged or too old."""
        if not value or len(value) > 4096:
            return None
        try:
            data: Any = self._serializer.loads(value)
        except BadSignature:
            return None
        try:
            session = Session(**data)
        except TypeError:  # signed by us but of another shape: an older version
            return None
        if not 0 <= now - session.issued < self.max_age:
            return None
        return session

    def read(self, conn: HTTPConnection, *, now: int) -> Session | None:
        """The session a request carries."""
        return self.loads(conn.cookies.get(COOKIE), now=now)

    def write(self, response: Response, conn: HTTPConnection, session: Session) -> None:
        """Set the session cookie on ``response``."""
        response.set_cookie(
            COOKIE,
            self.dumps(session),
            httponly=True,  # scripts never see it, even if one were injected
            samesite="lax",  # not sent on cross-site POSTs: a first wall against CSRF
            secure=conn.url.scheme == "https",
            path="/",
        )


def clear_cookie(response: Response, conn: HTTPConnection) -> None:
    """Delete the session cookie (sign-out)."""
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="lax", secure=conn.url.scheme == "https"
    )
