"""``/users`` routes: get, list, memberOf, checkMemberGroups."""

from __future__ import annotations

from typing import Any

from reclaim.testing.graph.errors import bad_request, not_found
from reclaim.testing.graph.odata import (
    advanced_ok,
    page,
    parse_filter_option,
    parse_select,
    parse_top,
)
from reclaim.testing.graph.router import GraphRequest, GraphResponse, Route, json_response
from reclaim.testing.graph.tenant import User
from reclaim.testing.graph.views import (
    GROUP_PROPERTIES,
    USER_DEFAULT,
    USER_PROPERTIES,
    directory_object,
    project,
    user_json,
)

# With signInActivity selected, Graph caps $top at 120.
SIGN_IN_ACTIVITY_MAX_TOP = 120


def lookup_user(req: GraphRequest, key: str) -> User:
    """A user by id or UPN, or Graph's 404."""
    user = req.state.tenant.find_user(key)
    if user is None:
        raise not_found(key)
    return user


def _select(req: GraphRequest) -> list[str] | None:
    return parse_select(req, USER_PROPERTIES, "user")


def get_user(req: GraphRequest, key: str) -> GraphResponse:
    """``GET /users/{id | userPrincipalName}``."""
    user = lookup_user(req, key)
    select = _select(req)
    ctx = f"users({','.join(select)})/$entity" if select else "users/$entity"
    body = {"@odata.context": f"{req.version_root}/$metadata#{ctx}"}
    body.update(project(user_json(req.state.tenant, user), select, USER_DEFAULT))
    return json_response(body)


def list_users(req: GraphRequest) -> GraphResponse:
    """``GET /users`` with ``$select``, ``$filter``, ``$top``, ``$count`` and paging."""
    tenant = req.state.tenant
    select = _select(req)
    maximum = SIGN_IN_ACTIVITY_MAX_TOP if select and "signInActivity" in select else 999
    top = parse_top(req, 100, maximum)
    flt = parse_filter_option(req)
    # Without a filter only the page being returned is rendered (big benchmark tenants).
    users = tenant.users
    ids = [u.id for u in users.values() if flt is None or flt(user_json(tenant, u))]
    count = len(ids) if advanced_ok(req) else None
    ctx = f"users({','.join(select)})" if select else "users"
    body = page(
        req,
        ids,
        lambda uid: project(user_json(tenant, users[uid]), select, USER_DEFAULT),
        top=top,
        context=ctx,
        count=count,
    )
    return json_response(body)


def count_users(req: GraphRequest) -> GraphResponse:
    """``GET /users/$count`` (advanced query: needs ConsistencyLevel)."""
    if not req.eventual:
        raise bad_request("$count is not currently supported.")
    flt = parse_filter_option(req)
    tenant = req.state.tenant
    n = sum(1 for u in tenant.users.values() if flt is None or flt(user_json(tenant, u)))
    return GraphResponse(200, str(n), {}, "text/plain")


def member_of(req: GraphRequest, key: str, *, transitive: bool = False) -> GraphResponse:
    """``GET /users/{id}/memberOf`` (direct) or ``/transitiveMemberOf``."""
    user = lookup_user(req, key)
    tenant = req.state.tenant
    select = parse_select(req, GROUP_PROPERTIES, "group")
    top = parse_top(req, 100, 999)
    flt = parse_filter_option(req, relationship=True)
    groups = tenant.groups_of(user.id, transitive=transitive)
    ids = [g.id for g in groups if flt is None or flt(directory_object(tenant, g.id, None))]
    count = len(ids) if advanced_ok(req) else None
    body = page(
        req,
        ids,
        lambda gid: directory_object(tenant, gid, select),
        top=top,
        context="directoryObjects",
        count=count,
    )
    return json_response(body)


def check_member_groups(req: GraphRequest, key: str) -> GraphResponse:
    """``POST /users/{id}/checkMemberGroups``: which of ≤20 groups the user is in, transitively."""
    user = lookup_user(req, key)
    ids = _group_ids(req)
    mine = {g.id for g in req.state.tenant.groups_of(user.id, transitive=True)}
    return json_response(
        {
            "@odata.context": f"{req.version_root}/$metadata#Collection(Edm.String)",
            "value": [gid for gid in ids if gid in mine],
        }
    )


def get_member_groups(req: GraphRequest, key: str) -> GraphResponse:
    """``POST /users/{id}/getMemberGroups``: every group id the user is in, transitively."""
    user = lookup_user(req, key)
    body: Any = req.body if isinstance(req.body, dict) else {}
    security_only = bool(body.get("securityEnabledOnly"))
    groups = req.state.tenant.groups_of(user.id, transitive=True)
    return json_response(
        {
            "@odata.context": f"{req.version_root}/$metadata#Collection(Edm.String)",
            "value": [g.id for g in groups if g.security_enabled or not security_only],
        }
    )


def _group_ids(req: GraphRequest) -> list[str]:
    body = req.body if isinstance(req.body, dict) else None
    ids = body.get("groupIds") if body else None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise bad_request("Invalid request body: 'groupIds' must be a collection of strings.")
    if len(ids) > 20:
        raise bad_request(
            "The number of group ids in the request exceeds the maximum allowed (20)."
        )
    return ids


ROUTES = [
    Route("GET", ("users",), list_users, base_cost=2),
    Route("GET", ("users", "$count"), count_users, base_cost=2),
    Route("GET", ("users", "*"), get_user),
    Route("GET", ("users", "*", "memberOf"), member_of, base_cost=2),
    Route(
        "GET",
        ("users", "*", "memberOf", "microsoft.graph.group"),
        member_of,  # only groups are modelled, so the cast changes nothing
        base_cost=2,
    ),
    Route(
        "GET",
        ("users", "*", "transitiveMemberOf"),
        lambda req, key: member_of(req, key, transitive=True),
        base_cost=2,
    ),
    Route("POST", ("users", "*", "checkMemberGroups"), check_member_groups, base_cost=4),
    Route("POST", ("users", "*", "getMemberGroups"), get_member_groups, base_cost=2),
]
