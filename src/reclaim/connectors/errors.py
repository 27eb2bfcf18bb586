"""What a connector tells its caller to do when an outside system says no.

Every connector translates its own protocol's failures into exactly one of these,
once, at the edge, so workflows never look at HTTP status codes or LDAP result
codes. The shape follows authentik's ``lib/sync/outgoing/exceptions.py``.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base class. ``detail`` is safe to show and store: it never holds a secret."""

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


class Transient(ConnectorError):
    """Try again later (throttled, 5xx, timeout, DC unreachable).

    ``retry_after`` is the peer's own hint in seconds (Retry-After), if it gave one.
    """

    def __init__(
        self, detail: str, *, code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(detail, code=code)
        self.retry_after = retry_after


class Deferred(Transient):
    """Not now, by our own rule rather than a failure (quiet hours, one message per
    person per day): wait ``retry_after`` seconds; it does not count as a failed try
    and is not shown as an error."""


class Unavailable(Transient):
    """Transient, and not about this one request: the service itself is down (Graph's
    sign-in endpoint failing or unreachable), so every other call would fail the same
    way. Callers wait as for Transient and stop the pass instead of trying each case.
    """


class NotFound(ConnectorError):
    """The object asked for does not exist (unknown user, group, SID)."""


class AlreadyDone(ConnectorError):
    """The change is already in place (member already removed / already added).

    Callers treat this as success: it is what a retry after a crash sees.
    """


class Rejected(ConnectorError):
    """The peer refused this one request (bad request, synced or dynamic group).

    Record it against the case and move on; other cases are unaffected.
    """


class StopRun(ConnectorError):
    """Nothing more can succeed in this run (credentials rejected or revoked,
    TLS required, permission missing, kill switch). Stop the run and tell the admin.
    """


class WriteRefused(StopRun):
    """A write was attempted while writes are not allowed (dry-run or paused).

    Raised by the transport itself, so no code path can forget to check.
    """
