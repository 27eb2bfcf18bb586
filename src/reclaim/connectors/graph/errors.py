"""Graph's answers translated, once, into what the caller must do (``connectors.errors``).

| status | Graph code (examples)                    | becomes                                      |
|--------|------------------------------------------|----------------------------------------------|
| 400    | Request_BadRequest, Request_Unsupported… | Rejected (Graph's message)                   |
| 400    | Directory_ExpiredPageToken               | Transient (restart the listing)              |
| 401    | InvalidAuthenticationToken (after a      | StopRun "access token rejected"              |
|        | token refresh)                           |                                              |
| 403    | Authorization_RequestDenied              | StopRun naming the permission the call needs |
| 404    | Request_ResourceNotFound                 | NotFound                                     |
| 410    | syncStateNotFound / resyncRequired       | Rejected (delta callers restart)             |
| 429    | TooManyRequests                          | Transient(retry_after)                       |
| 500-504| ServiceUnavailable, GatewayTimeout, …    | Transient(retry_after)                       |

The membership writes refine 400/404 further (see ``membership.py``): "already exist" →
AlreadyDone, a 404 on removal is re-checked before it becomes AlreadyDone.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reclaim.connectors.errors import ConnectorError, NotFound, Rejected, StopRun, Transient

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
EXPIRED_PAGE_TOKEN = "Directory_ExpiredPageToken"  # noqa: S105 - an error code


@dataclass(frozen=True)
class GraphFailure:
    """The parts of a Graph error response worth keeping."""

    status: int
    code: str
    message: str
    request_id: str | None = None
    retry_after: float | None = None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def failure_from(status: int, *, headers: Mapping[str, str], body: Any) -> GraphFailure:
    """Read Graph's ``{"error": {"code", "message", "innerError"}}`` (or an OAuth body)."""
    code, message, request_id = "", "", headers.get("request-id")
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or "")
        message = str(error.get("message") or "")
        inner = error.get("innerError") or error.get("innererror")
        if isinstance(inner, dict):
            request_id = str(inner.get("request-id") or request_id or "") or None
    elif isinstance(error, str):  # OAuth-style body from a token endpoint
        code = error
        message = str(body.get("error_description", "")) if isinstance(body, dict) else ""
    elif isinstance(body, str):
        message = body[:300]
    return GraphFailure(
        status=status,
        code=code or f"HTTP{status}",
        message=message or f"HTTP {status}",
        request_id=request_id,
        retry_after=parse_retry_after(headers.get("retry-after")),
    )


def permission_for(method: str, path: str) -> str:
    """The least-privileged application permission a Graph call needs (for 403 messages)."""
    p = path.lower().split("?", 1)[0]
    q = path.lower()
    if "/members/$ref" in p or ("/members/" in p and p.endswith("/$ref")):
        return "GroupMember.ReadWrite.All"
    if p.endswith("/assignlicense"):
        return "LicenseAssignment.ReadWrite.All (or User.ReadWrite.All)"
    if "subscribedskus" in p:
        return "LicenseAssignment.Read.All (or Organization.Read.All)"
    if p.startswith("/auditlogs") or "signinactivity" in q:
        return "AuditLog.Read.All (with User.Read.All)"
    if p.startswith("/reports"):
        return "Reports.Read.All"
    if p.startswith("/groups"):
        write = method.upper() != "GET"
        return "GroupMember.ReadWrite.All" if write else "GroupMember.Read.All"
    if p.endswith(("/checkmembergroups", "/getmembergroups", "/memberof", "/transitivememberof")):
        return "User.Read.All and GroupMember.Read.All"
    return "User.Read.All"


def describe(failure: GraphFailure, *, method: str, path: str) -> str:
    """One line for logs and case records: the call, Graph's code and message, request id."""
    where = path.split("?", 1)[0]
    rid = f" (request-id {failure.request_id})" if failure.request_id else ""
    return f"{method} {where}: {failure.status} {failure.code}: {failure.message}{rid}"


def translate(failure: GraphFailure, *, method: str, path: str) -> ConnectorError:
    """The connector error for a Graph failure (see the table at the top of this module)."""
    text = describe(failure, method=method, path=path)
    tag = f"graph-{failure.status}-{failure.code}"
    status = failure.status
    if status in TRANSIENT_STATUSES or status >= 500:
        return Transient(text, code=tag, retry_after=failure.retry_after)
    if status == 401:
        return StopRun(
            f"access token rejected (credentials revoked or app disabled?): {text}", code=tag
        )
    if status == 403:
        return StopRun(
            f"permission missing: this call needs the application permission "
            f"{permission_for(method, path)} with admin consent; {text}",
            code=tag,
        )
    if status == 404:
        return NotFound(text, code=tag)
    if failure.code == EXPIRED_PAGE_TOKEN:
        # The listing it belonged to can simply be started again later.
        return Transient(text, code=tag)
    if status == 423:
        return Transient(text, code=tag, retry_after=failure.retry_after)
    return Rejected(text, code=tag)
