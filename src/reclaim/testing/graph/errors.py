"""Graph-shaped errors: ``{"error": {"code", "message", "innerError": {...}}}``."""

from __future__ import annotations

from typing import Any


class GraphError(Exception):
    """Raised by route handlers; turned into a Graph error response by the dispatcher."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_body(
    code: str, message: str, *, date: str, request_id: str, client_request_id: str
) -> dict[str, Any]:
    """The JSON body Graph sends with every error."""
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": date,
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }


def not_found(resource_id: str) -> GraphError:
    """404 for an id or UPN that does not resolve, worded as Entra words it."""
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{resource_id}' does not exist or one of its queried "
        "reference-property objects are not present.",
    )


def bad_request(message: str, code: str = "Request_BadRequest") -> GraphError:
    """400 with the directory's usual code."""
    return GraphError(400, code, message)


def unsupported_query(message: str) -> GraphError:
    """400 for queries that need advanced query parameters or are not supported at all."""
    return GraphError(400, "Request_UnsupportedQuery", message)


ON_PREM_MASTERED = (
    "Unable to update the specified properties for on-premises mastered Directory Sync "
    "objects or objects currently undergoing migration."
)
ALREADY_EXISTS = (
    "One or more added object references already exist for the following modified "
    "properties: 'members'."
)
# Not verbatim from Microsoft's docs (they only say dynamic groups cannot be edited); the code
# and status match what the directory answers for refused membership writes.
DYNAMIC_GROUP = (
    "Unable to update the members of a group with dynamic membership: its members are "
    "managed by the membershipRule."
)
METHOD_NOT_ALLOWED = "Specified HTTP method is not allowed for the request target."
PAGE_EXPIRED = (
    "The specified page token value has expired and can no longer be included in your request."
)
