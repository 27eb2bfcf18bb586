"""Graph failures become connector errors; a 403 names the permission the call needs."""

from __future__ import annotations

import pytest

from reclaim.connectors.errors import ConnectorError, NotFound, Rejected, StopRun, Transient
from reclaim.connectors.graph import USER_SELECT_WITH_SIGN_IN, GraphClient
from reclaim.connectors.graph.errors import failure_from, parse_retry_after, translate
from reclaim.testing.graph import GraphServer

from .conftest import ALICE, BOB, DYNAMIC_GROUP, E3_GROUP, VISIO_SKU


def _error(status: int, code: str, message: str = "m", **headers: str) -> ConnectorError:
    body = {"error": {"code": code, "message": message, "innerError": {"request-id": "r-1"}}}
    failure = failure_from(status, headers=headers, body=body)
    return translate(failure, method="GET", path="/users/x?$select=id")


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, "Request_BadRequest", Rejected),
        (400, "Request_UnsupportedQuery", Rejected),
        (400, "Directory_ExpiredPageToken", Transient),
        (401, "InvalidAuthenticationToken", StopRun),
        (403, "Authorization_RequestDenied", StopRun),
        (404, "Request_ResourceNotFound", NotFound),
        (410, "resyncRequired", Rejected),
        (429, "TooManyRequests", Transient),
        (500, "InternalServerError", Transient),
        (503, "ServiceUnavailable", Transient),
        (504, "GatewayTimeout", Transient),
    ],
)
def test_translation_table(status: int, code: str, kind: type) -> None:
    error = _error(status, code, "Graph says why")
    assert type(error) is kind
    assert "Graph says why" in error.detail and "r-1" in error.detail
    assert error.code == f"graph-{status}-{code}"


def test_retry_after_is_kept() -> None:
    error = _error(429, "TooManyRequests", **{"retry-after": "17"})
    assert isinstance(error, Transient) and error.retry_after == 17
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None


@pytest.mark.parametrize(
    ("path", "call", "permission"),
    [
        (r"/users/", lambda c: c.get_user(ALICE), "User.Read.All"),
        (
            r"/users/",
            lambda c: c.get_user(ALICE, USER_SELECT_WITH_SIGN_IN),
            "AuditLog.Read.All",
        ),
        (r"/members$", lambda c: list(c.list_members(E3_GROUP)), "GroupMember.Read.All"),
        (
            r"/members/.+/\$ref$",
            lambda c: c.remove_member(E3_GROUP, BOB),
            "GroupMember.ReadWrite.All",
        ),
        (r"/subscribedSkus$", lambda c: c.subscribed_skus(), "LicenseAssignment.Read.All"),
        (
            r"/assignLicense$",
            lambda c: c.remove_direct_license(ALICE, VISIO_SKU),
            "LicenseAssignment.ReadWrite.All",
        ),
    ],
)
def test_403_is_stoprun_naming_the_permission(
    server: GraphServer, client: GraphClient, path: str, call, permission: str
) -> None:
    server.faults.fail_next(1, 403, path=path)
    with pytest.raises(StopRun, match="permission missing") as info:
        call(client)
    assert permission in info.value.detail


def test_403_on_a_dynamic_group_write_is_rejected_not_stoprun(
    server: GraphServer, client: GraphClient
) -> None:
    # Some tenants answer membership writes on dynamic groups with 403: still one group.
    server.faults.fail_next(1, 403, path=r"/members/.+/\$ref$")
    with pytest.raises(Rejected, match="dynamic membership"):
        client.remove_member(DYNAMIC_GROUP, BOB)
