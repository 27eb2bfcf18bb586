"""Read calls: users (one or many), groups, members, membership delta, subscribed SKUs.

Every function takes the transport and documents the Graph call it makes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from reclaim.connectors.errors import ConnectorError, NotFound, Rejected
from reclaim.connectors.graph.batch import BatchPart, run_batches
from reclaim.connectors.graph.errors import EXPIRED_PAGE_TOKEN
from reclaim.connectors.graph.messages import (
    GraphRequest,
    GraphResponse,
    is_guid,
    odata_string,
    path_segment,
    user_path,
)
from reclaim.connectors.graph.models import (
    GROUP_SELECT,
    SIGN_IN_ACTIVITY,
    SKU_SELECT,
    USER_SELECT,
    USER_TYPE,
    GraphGroup,
    GraphUser,
    MembersDelta,
    SubscribedSku,
    group_from_json,
    sku_from_json,
    user_from_json,
)
from reclaim.connectors.graph.paging import EVENTUAL, MAX_TOP, iter_values
from reclaim.connectors.graph.transport import GraphTransport

log = logging.getLogger("reclaim.connectors.graph")


def user_request(key: str, select: Sequence[str] = USER_SELECT) -> GraphRequest:
    """``GET /users/{id | upn}?$select=...`` (see :func:`messages.user_path` for UPN forms).

    Graph refuses ``$select=signInActivity`` on ``/users/{userPrincipalName}`` (it wants
    the object id there), so a UPN with sign-in activity is looked up with
    ``GET /users?$filter=userPrincipalName eq '...'`` instead.
    """
    fields = ",".join(dict.fromkeys(("id", *select)))
    if SIGN_IN_ACTIVITY in select and not is_guid(key):
        flt = f"userPrincipalName eq {odata_string(key)}"
        return GraphRequest("GET", "/users", params={"$filter": flt, "$select": fields})
    return GraphRequest("GET", user_path(key), params={"$select": fields})


def user_from_response(key: str, resp: GraphResponse) -> GraphUser:
    """The user in a ``user_request`` answer; NotFound when there is none."""
    resp.raise_for_error()
    body = resp.json()
    if "value" in body:  # the $filter form answers with a collection
        found = [v for v in body.get("value") or [] if isinstance(v, dict)]
        if not found:
            raise NotFound(
                f"user {key!r} does not exist", code="graph-404-Request_ResourceNotFound"
            )
        return user_from_json(found[0])
    return user_from_json(body)


def get_user(
    transport: GraphTransport, key: str, *, select: Sequence[str] = USER_SELECT
) -> GraphUser:
    """One user by object id or UPN: ``GET /users/{key}?$select=...``."""
    req = user_request(key, select)
    return user_from_response(key, transport.send(req))


def get_users(
    transport: GraphTransport, keys: Sequence[str], *, select: Sequence[str] = USER_SELECT
) -> dict[str, GraphUser | ConnectorError]:
    """Many users through ``POST /$batch`` (20 ``GET /users/{key}`` per batch).

    Each key maps to its user or to the connector error for it (NotFound for unknown
    users). Duplicate keys are fetched once.
    """
    unique = list(dict.fromkeys(keys))
    parts = [BatchPart(str(i), user_request(k, select)) for i, k in enumerate(unique)]
    answers = run_batches(transport, parts)
    out: dict[str, GraphUser | ConnectorError] = {}
    for i, key in enumerate(unique):
        answer = answers[str(i)]
        if isinstance(answer, ConnectorError):
            out[key] = answer
            continue
        try:
            out[key] = user_from_response(key, answer)
        except ConnectorError as exc:
            out[key] = exc
    return out


def get_group(transport: GraphTransport, group_id: str) -> GraphGroup:
    """One group: ``GET /groups/{id}?$select=displayName,groupTypes,...,assignedLicenses``."""
    req = GraphRequest(
        "GET", f"/groups/{path_segment(group_id)}", params={"$select": ",".join(GROUP_SELECT)}
    )
    resp = transport.send(req)
    resp.raise_for_error()
    return group_from_json(resp.json())


def list_members(
    transport: GraphTransport, group_id: str, *, select: Sequence[str] = USER_SELECT
) -> Iterator[GraphUser]:
    """Direct user members: ``GET /groups/{id}/members?$select=...&$top=999``, all pages.

    Nested groups, devices and service principals are skipped (by ``@odata.type``, which
    needs no advanced query, unlike an OData cast on some relationships). Group-based
    licensing follows direct membership, which is what this lists. ``signInActivity``
    cannot be selected on a relationship; read it with :func:`get_users`.
    """
    if SIGN_IN_ACTIVITY in select:
        raise ValueError("signInActivity is only returned by /users; use get_users for it")
    fields = ",".join(dict.fromkeys(("id", *select)))
    req = GraphRequest(
        "GET",
        f"/groups/{path_segment(group_id)}/members",
        params={"$select": fields, "$top": str(MAX_TOP)},
    )
    for item in iter_values(transport, req):
        if item.get("@odata.type") == USER_TYPE:
            yield user_from_json(item)


def count_members(transport: GraphTransport, group_id: str) -> int:
    """How many direct members a group has: ``GET /groups/{id}/members/$count``.

    ``$count`` is an advanced query: it needs ``ConsistencyLevel: eventual`` and reads an
    index that can lag recent changes by a little, so use it for display and sizing,
    never to decide about one membership.
    """
    req = GraphRequest("GET", f"/groups/{path_segment(group_id)}/members/$count", headers=EVENTUAL)
    resp = transport.send(req)
    resp.raise_for_error()
    try:
        return int(str(resp.body).strip())
    except ValueError:
        raise Rejected(
            f"GET /groups/{group_id}/members/$count: not a number: {str(resp.body)[:50]!r}",
            code="graph-count",
        ) from None


def _delta_start(group_id: str) -> GraphRequest:
    return GraphRequest(
        "GET",
        "/groups/delta",
        params={"$filter": f"id eq {odata_string(group_id)}", "$select": "displayName,members"},
    )


def _delta_expired(resp: GraphResponse) -> bool:
    # Graph answers a stale delta token with 410 (resyncRequired) or a 400 page-token error.
    return resp.status == 410 or (resp.status == 400 and resp.failure.code == EXPIRED_PAGE_TOKEN)


def members_delta(
    transport: GraphTransport, group_id: str, *, delta_link: str | None = None
) -> MembersDelta:
    """Membership changes since ``delta_link`` via ``GET /groups/delta``.

    Without a link (or when Graph says the link expired) this is a full round:
    ``GET /groups/delta?$filter=id eq '{id}'&$select=displayName,members`` lists every
    member; later rounds call the returned deltaLink and get only added members and
    removed ones (``@removed``). A member's last change in the round wins.
    """
    full = delta_link is None
    request = _delta_start(group_id) if delta_link is None else GraphRequest("GET", delta_link)
    changes: dict[str, bool] = {}
    first_page = True
    while True:
        resp = transport.send(request)
        if first_page and not full and _delta_expired(resp):
            log.info("Graph: delta link for group %s expired; starting a full round", group_id)
            full, changes, request = True, {}, _delta_start(group_id)
            continue
        resp.raise_for_error()
        first_page = False
        page = resp.json()
        _collect(page, group_id, changes)
        next_link = page.get("@odata.nextLink")
        if next_link:
            request = GraphRequest("GET", str(next_link))
            continue
        new_link = page.get("@odata.deltaLink")
        if not new_link:
            raise NotFound(
                f"groups/delta for {group_id} ended without a deltaLink", code="graph-delta"
            )
        return MembersDelta(
            added=tuple(m for m, added in changes.items() if added),
            removed=tuple(m for m, added in changes.items() if not added),
            delta_link=str(new_link),
            full=full,
        )


def _collect(page: dict[str, Any], group_id: str, changes: dict[str, bool]) -> None:
    for group in page.get("value") or []:
        if not isinstance(group, dict) or group.get("id") != group_id:
            continue
        for member in group.get("members@delta") or []:
            if not isinstance(member, dict) or member.get("@odata.type", USER_TYPE) != USER_TYPE:
                continue
            mid = str(member.get("id"))
            changes.pop(mid, None)  # re-insert so the order follows the last change
            changes[mid] = "@removed" not in member


def subscribed_skus(transport: GraphTransport) -> list[SubscribedSku]:
    """The tenant's subscriptions: ``GET /subscribedSkus?$select=skuId,...,prepaidUnits``."""
    req = GraphRequest("GET", "/subscribedSkus", params={"$select": ",".join(SKU_SELECT)})
    return [sku_from_json(item) for item in iter_values(transport, req)]
