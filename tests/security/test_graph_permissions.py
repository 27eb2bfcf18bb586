"""Graph 403 → Reclaim names the application permission that is missing.

Through ``EntraDirectory`` (what the workflow uses) against the Graph test server over
HTTPS. The server does not model app roles per token, so a 403
``Authorization_RequestDenied`` is injected on the call a missing permission would
refuse; the run must stop (``StopRun``) with the permission's name, and nothing is
half done (the member is still in the group).
"""

from __future__ import annotations

import pytest

from reclaim.connectors.errors import StopRun
from reclaim.connectors.graph import GraphClient
from reclaim.testing.graph import GraphServer
from reclaim.workflows.entra_id import EntraDirectory
from tests.integration.entra.conftest import (  # noqa: F401  (fixtures)
    E3_GROUP,
    GUEST,
    UPNS,
    _running_server,
    client,
    clock,
    make_client,
    policy,
    server,
)

E3 = policy("E3", E3_GROUP)


def test_a_refused_removal_names_group_member_readwrite_all(
    server: GraphServer,  # noqa: F811
    client: GraphClient,  # noqa: F811
) -> None:
    directory = EntraDirectory(client)
    user = UPNS[GUEST]
    assert directory.is_member(policy=E3, user=user)
    server.faults.fail_next(1, 403, method="DELETE", path=r"/members/.+/\$ref$")
    with pytest.raises(StopRun) as info:
        directory.remove_member(policy=E3, user=user, idempotency_key="k-403")
    assert "GroupMember.ReadWrite.All" in info.value.detail
    assert "permission missing" in info.value.detail
    assert directory.is_member(policy=E3, user=user)  # nothing was removed


@pytest.mark.parametrize(
    ("path", "permission"),
    [
        (r"/users/", "User.Read.All"),
        (r"/memberOf", "GroupMember.Read.All"),
    ],
)
def test_a_refused_read_names_its_permission(
    server: GraphServer,  # noqa: F811
    client: GraphClient,  # noqa: F811
    path: str,
    permission: str,
) -> None:
    server.faults.fail_next(1, 403, path=path)
    with pytest.raises(StopRun) as info:
        EntraDirectory(client).is_member(policy=E3, user=UPNS[GUEST])
    assert permission in info.value.detail, info.value.detail
