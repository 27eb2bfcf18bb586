"""Membership writes: ``DELETE /groups/{g}/members/{u}/$ref`` and ``POST .../members/$ref``.

``DELETE /groups/{g}/members/{u}`` without ``/$ref`` has no route on purpose: the
dispatcher refuses it with 405, logs it as ``refused_user_delete`` and warns, because on
some endpoints that URL deletes the object itself.
"""

from __future__ import annotations

import re

from reclaim.testing.graph.errors import (
    ALREADY_EXISTS,
    DYNAMIC_GROUP,
    ON_PREM_MASTERED,
    bad_request,
    not_found,
)
from reclaim.testing.graph.router import GraphRequest, GraphResponse, Route, no_content
from reclaim.testing.graph.tenant import Group

_OBJECT_REF = re.compile(
    r"/(?:directoryObjects|users|groups)(?:/|\(')(?P<id>[^/'()?]+)'?\)?/?$", re.IGNORECASE
)
MAIL_ENABLED = "Cannot Update a mail-enabled security groups and or distribution list."


def writable_group(req: GraphRequest, key: str) -> Group:
    """The group, if its membership can be changed through Graph; else the documented 400."""
    group = req.state.tenant.groups.get(key)
    if group is None:
        raise not_found(key)
    if group.on_premises_sync_enabled:
        raise bad_request(ON_PREM_MASTERED)
    if group.is_dynamic:
        raise bad_request(DYNAMIC_GROUP)
    if group.mail_enabled and not any(t.lower() == "unified" for t in group.group_types):
        raise bad_request(MAIL_ENABLED)
    return group


def remove_member(req: GraphRequest, group_key: str, member_key: str) -> GraphResponse:
    """Remove one direct member by reference; 404 when it is not a member."""
    group = writable_group(req, group_key)
    tenant = req.state.tenant
    if member_key not in tenant.users and member_key not in tenant.groups:
        raise not_found(member_key)
    if member_key not in group.members:
        raise not_found(group.id)
    tenant.remove_member(group.id, member_key)
    return no_content()


def remove_member_by_query(req: GraphRequest, group_key: str) -> GraphResponse:
    """``DELETE /groups/{g}/members/$ref?$id=<directoryObject URL>``."""
    ref = req.query.get("id")
    if not ref:
        raise bad_request("The $id query option is required to delete a reference.")
    return remove_member(req, group_key, _ref_id(ref))


def add_member(req: GraphRequest, group_key: str) -> GraphResponse:
    """Add a member by reference; 400 when it already is one."""
    group = writable_group(req, group_key)
    body = req.body if isinstance(req.body, dict) else {}
    ref = body.get("@odata.id")
    if not isinstance(ref, str):
        raise bad_request("Invalid request body: '@odata.id' is required.")
    member_id = _ref_id(ref)
    tenant = req.state.tenant
    if member_id not in tenant.users and member_id not in tenant.groups:
        raise not_found(member_id)
    if member_id in group.members:
        raise bad_request(ALREADY_EXISTS)
    tenant.add_member(group.id, member_id)
    return no_content()


def _ref_id(ref: str) -> str:
    m = _OBJECT_REF.search(ref.strip())
    if not m:
        raise bad_request(f"Invalid object identifier '{ref}'.")
    return m.group("id")


ROUTES = [
    Route("DELETE", ("groups", "*", "members", "*", "$ref"), remove_member),
    Route("DELETE", ("groups", "*", "members", "$ref"), remove_member_by_query),
    Route("POST", ("groups", "*", "members", "$ref"), add_member),
]
