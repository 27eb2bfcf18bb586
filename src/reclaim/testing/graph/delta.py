"""``GET /groups/delta``: full state first, then only membership changes since a deltaLink.

Members come back in ``members@delta`` as ``{"@odata.type", "id"}``; removed ones carry
``"@removed": {"reason": "deleted"}``. Query options are only given on the first call and
are carried by the state tokens in ``@odata.nextLink`` / ``@odata.deltaLink``, which must be
followed verbatim. ``$deltatoken=latest`` starts tracking from now with no initial state.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

from reclaim.testing.graph.errors import PAGE_EXPIRED, GraphError, unsupported_query
from reclaim.testing.graph.filters import parse_filter
from reclaim.testing.graph.odata import parse_select
from reclaim.testing.graph.router import GraphRequest, GraphResponse, json_response
from reclaim.testing.graph.tenant import Group, Tenant
from reclaim.testing.graph.views import GROUP_DEFAULT, GROUP_PROPERTIES, group_json, project

PAGE_SIZE = 100  # groups per delta page; "Prefer: odata.maxpagesize=N" overrides it


def groups_delta(req: GraphRequest) -> GraphResponse:
    """Serve one page of a groups delta round."""
    state = req.state
    tenant = state.tenant
    skip, delta = req.query.get("skiptoken"), req.query.get("deltatoken")
    if skip or (delta and delta != "latest"):
        saved = state.deltas.get(skip or delta or "")
        if saved is None:
            raise GraphError(400, "Directory_ExpiredPageToken", PAGE_EXPIRED)
        if skip:
            return _emit(req, dict(saved))
        return _emit(req, _changes_since(tenant, saved))
    select = parse_select(req, GROUP_PROPERTIES, "group")
    ids = _filter_ids(req)
    base = {"select": select, "ids": ids, "seq": tenant.seq}
    if delta == "latest":
        return _emit(req, base | {"pending": []})
    groups = [g for g in sorted(tenant.groups.values(), key=lambda g: g.id) if _wanted(g, ids)]
    pending = [
        {"id": g.id, "members": [[m.member_id, m.kind, True] for m in g.members.values()]}
        for g in groups
    ]
    return _emit(req, base | {"pending": pending})


def _filter_ids(req: GraphRequest) -> list[str] | None:
    raw = req.query.get("filter")
    if raw is None:
        return None
    flt = parse_filter(raw)
    if flt.properties - {"id"}:
        raise unsupported_query(
            "Only the 'id' property can be filtered on in a groups delta query."
        )
    return [g.id for g in req.state.tenant.groups.values() if flt({"id": g.id})]


def _wanted(g: Group, ids: list[str] | None) -> bool:
    return ids is None or g.id in ids


def _changes_since(tenant: Tenant, saved: dict[str, Any]) -> dict[str, Any]:
    """Net membership changes after ``saved['seq']``, grouped by group (last change wins)."""
    per_group: dict[str, dict[str, list[Any]]] = {}
    for ch in tenant.changes:
        if ch.seq <= saved["seq"] or not _wanted_id(ch.group_id, saved["ids"]):
            continue
        per_group.setdefault(ch.group_id, {})[ch.member_id] = [ch.member_id, ch.kind, ch.added]
    pending = [
        {"id": gid, "members": list(members.values())}
        for gid, members in sorted(per_group.items())
        if gid in tenant.groups
    ]
    return {"select": saved["select"], "ids": saved["ids"], "seq": tenant.seq, "pending": pending}


def _wanted_id(group_id: str, ids: list[str] | None) -> bool:
    return ids is None or group_id in ids


def _page_size(req: GraphRequest) -> int:
    prefer = req.headers.get("prefer", "")
    for part in prefer.split(","):
        name, _, value = part.strip().partition("=")
        if name.lower() == "odata.maxpagesize" and value.strip().isdigit():
            return max(1, int(value))
    return PAGE_SIZE


def _emit(req: GraphRequest, work: dict[str, Any]) -> GraphResponse:
    """Render the next page of ``work['pending']`` and the link that continues the round."""
    tenant = req.state.tenant
    size = _page_size(req)
    now_pending, later = work["pending"][:size], work["pending"][size:]
    select: list[str] | None = work["select"]
    props = [s for s in select if s != "members"] if select is not None else None
    with_members = select is None or "members" in select
    values = []
    for item in now_pending:
        group = tenant.groups.get(item["id"])
        if group is None:
            continue
        obj: dict[str, Any] = {"id": group.id}
        obj.update(project(group_json(group), props, GROUP_DEFAULT))
        if with_members and item["members"]:
            obj["members@delta"] = [_member_entry(*m) for m in item["members"]]
        values.append(obj)
    token = secrets.token_urlsafe(24)
    link = f"{req.version_root}/groups/delta?"
    body: dict[str, Any] = {"@odata.context": f"{req.version_root}/$metadata#groups"}
    if later:
        req.state.deltas[token] = work | {"pending": later}
        body["@odata.nextLink"] = link + "$skiptoken=" + quote(token, safe="")
    else:
        req.state.deltas[token] = {"select": select, "ids": work["ids"], "seq": work["seq"]}
        body["@odata.deltaLink"] = link + "$deltatoken=" + quote(token, safe="")
    body["value"] = values
    return json_response(body)


def _member_entry(member_id: str, kind: str, added: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"@odata.type": f"#microsoft.graph.{kind}", "id": member_id}
    if not added:
        entry["@removed"] = {"reason": "deleted"}
    return entry
