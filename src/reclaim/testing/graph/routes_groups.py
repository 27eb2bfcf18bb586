"""``/groups`` read routes: get, list, members, transitiveMembers, ``$count``, delta."""

from __future__ import annotations

from reclaim.testing.graph.delta import groups_delta
from reclaim.testing.graph.errors import bad_request, not_found
from reclaim.testing.graph.odata import (
    advanced_ok,
    page,
    parse_filter_option,
    parse_select,
    parse_top,
)
from reclaim.testing.graph.router import GraphRequest, GraphResponse, Route, json_response
from reclaim.testing.graph.tenant import Group
from reclaim.testing.graph.views import (
    GROUP_DEFAULT,
    GROUP_PROPERTIES,
    USER_PROPERTIES,
    directory_object,
    group_json,
    project,
    user_json,
)

_MEMBER_PROPERTIES = USER_PROPERTIES | GROUP_PROPERTIES


def lookup_group(req: GraphRequest, key: str) -> Group:
    """A group by object id, or Graph's 404."""
    group = req.state.tenant.groups.get(key)
    if group is None:
        raise not_found(key)
    return group


def get_group(req: GraphRequest, key: str) -> GraphResponse:
    """``GET /groups/{id}``."""
    group = lookup_group(req, key)
    select = parse_select(req, GROUP_PROPERTIES - {"members"}, "group")
    ctx = f"groups({','.join(select)})/$entity" if select else "groups/$entity"
    body = {"@odata.context": f"{req.version_root}/$metadata#{ctx}"}
    body.update(project(group_json(group), select, GROUP_DEFAULT))
    return json_response(body)


def list_groups(req: GraphRequest) -> GraphResponse:
    """``GET /groups`` with ``$select``, ``$filter``, ``$top`` and paging."""
    tenant = req.state.tenant
    select = parse_select(req, GROUP_PROPERTIES - {"members"}, "group")
    top = parse_top(req, 100, 999)
    flt = parse_filter_option(req)
    full = {g.id: group_json(g) for g in tenant.groups.values()}
    ids = [gid for gid, data in full.items() if flt is None or flt(data)]
    body = page(
        req,
        ids,
        lambda gid: project(full[gid], select, GROUP_DEFAULT),
        top=top,
        context=f"groups({','.join(select)})" if select else "groups",
        count=len(ids) if advanced_ok(req) else None,
    )
    return json_response(body)


def _member_ids(req: GraphRequest, group: Group, transitive: bool, cast: str | None) -> list[str]:
    tenant = req.state.tenant
    if transitive:
        pairs = tenant.transitive_members(group.id)
    else:
        pairs = [(m.member_id, m.kind) for m in group.members.values()]
    if cast:
        want = cast.lower().removeprefix("microsoft.graph.")
        if want not in ("user", "group"):
            raise bad_request(f"Type '{cast}' is not a valid cast for members.")
        pairs = [(i, k) for i, k in pairs if k == want]
    flt = parse_filter_option(req, relationship=True)
    ids = [i for i, _ in pairs if i in tenant.users or i in tenant.groups]
    if flt is not None:
        ids = [i for i in ids if flt(_full(req, i))]
    return ids


def _full(req: GraphRequest, object_id: str) -> dict[str, object]:
    """Every property of a member, for evaluating ``$filter``."""
    tenant = req.state.tenant
    u = tenant.users.get(object_id)
    return user_json(tenant, u) if u else group_json(tenant.groups[object_id])


def list_members(
    req: GraphRequest, key: str, cast: str | None = None, *, transitive: bool = False
) -> GraphResponse:
    """``GET /groups/{id}/members`` or ``/transitiveMembers``, optionally cast to a type."""
    group = lookup_group(req, key)
    tenant = req.state.tenant
    select = parse_select(req, _MEMBER_PROPERTIES, "directoryObject")
    top = parse_top(req, 100, 999)
    ids = _member_ids(req, group, transitive, cast)
    body = page(
        req,
        ids,
        lambda oid: directory_object(tenant, oid, select),
        top=top,
        context="directoryObjects",
        count=len(ids) if advanced_ok(req) else None,
    )
    return json_response(body)


def count_members(
    req: GraphRequest, key: str, cast: str | None = None, *, transitive: bool = False
) -> GraphResponse:
    """``GET /groups/{id}/members/$count``: needs ``ConsistencyLevel: eventual``."""
    group = lookup_group(req, key)
    if not req.eventual:
        raise bad_request("$count is not currently supported.")
    return GraphResponse(200, str(len(_member_ids(req, group, transitive, cast))), {}, "text/plain")


def _members_routes() -> list[Route]:
    routes: list[Route] = []
    for rel, transitive, cost in (("members", False, 3), ("transitiveMembers", True, 5)):
        routes += [
            Route(
                "GET",
                ("groups", "*", rel),
                lambda req, key, t=transitive: list_members(req, key, transitive=t),
                base_cost=cost,
            ),
            Route(
                "GET",
                ("groups", "*", rel, "$count"),
                lambda req, key, t=transitive: count_members(req, key, transitive=t),
                base_cost=cost,
            ),
            Route(
                "GET",
                ("groups", "*", rel, "*"),
                lambda req, key, cast, t=transitive: list_members(req, key, cast, transitive=t),
                base_cost=cost,
            ),
            Route(
                "GET",
                ("groups", "*", rel, "*", "$count"),
                lambda req, key, cast, t=transitive: count_members(req, key, cast, transitive=t),
                base_cost=cost,
            ),
        ]
    return routes


ROUTES = [
    Route("GET", ("groups",), list_groups),
    Route("GET", ("groups", "delta"), groups_delta),
    Route("GET", ("groups", "delta()"), groups_delta),
    Route("GET", ("groups", "*"), get_group),
    *_members_routes(),
]
