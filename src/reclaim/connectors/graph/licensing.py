"""Direct license removal, for policies that opt in (most licenses come from groups).

``POST /users/{u}/assignLicense {"addLicenses": [], "removeLicenses": [sku]}`` only
touches *direct* assignments; a license inherited from a group is removed by removing
the membership instead. A refusal is checked against the user's
``licenseAssignmentStates`` before it is believed.
"""

from __future__ import annotations

from reclaim.connectors.errors import AlreadyDone, NotFound, Rejected
from reclaim.connectors.graph.messages import GraphRequest, user_path
from reclaim.connectors.graph.reads import get_user
from reclaim.connectors.graph.transport import GraphTransport


def remove_direct_license(transport: GraphTransport, *, user_id: str, sku_id: str) -> None:
    """Remove a directly assigned SKU from a user (``POST /users/{u}/assignLicense``).

    Needs LicenseAssignment.ReadWrite.All (or User.ReadWrite.All). Raises AlreadyDone
    when the user holds no direct assignment of the SKU (its detail names any groups that
    still grant it: removing those memberships is what frees the seat), Rejected when
    Graph refuses to remove an existing direct assignment, NotFound for an unknown user.
    Not repeated after an unclear network failure (Transient instead): the caller's
    later retry is answered 400 and then reported as AlreadyDone by the check above.
    """
    transport.check_write(f"removal of license {sku_id} from {user_id}")
    req = GraphRequest(
        "POST",
        f"{user_path(user_id)}/assignLicense",
        body={"addLicenses": [], "removeLicenses": [sku_id]},
    )
    resp = transport.send(req)
    if resp.ok:
        return
    if resp.status == 404:
        raise NotFound(f"user {user_id} does not exist", code="graph-404-user")
    if resp.status != 400:
        raise resp.error()
    user = get_user(transport, user_id, select=("id", "licenseAssignmentStates"))
    states = [s for s in user.license_assignment_states if s.sku_id.lower() == sku_id.lower()]
    if any(s.is_direct for s in states):
        raise Rejected(
            f"Graph refused to remove license {sku_id} from {user_id}: {resp.failure.message}",
            code="graph-license",
        )
    # No direct assignment left: done (also what a retry after a crash sees). Say so if
    # groups still grant the SKU: only removing those memberships frees the seat.
    groups = ", ".join(sorted({str(s.assigned_by_group) for s in states}))
    still = f"; it is still granted by group(s) {groups}" if groups else ""
    raise AlreadyDone(
        f"user {user_id} has no direct assignment of license {sku_id}{still}",
        code="graph-license-absent",
    )
