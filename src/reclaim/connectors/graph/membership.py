"""Membership: check it, remove users from a group (one or in bulk), add them back.

Removal is ``DELETE /groups/{g}/members/{u}/$ref``: the ``/$ref`` is what makes it
remove a *reference*; without it Graph deletes the user object (the transport refuses
such a call). Graph's refusals are interpreted, not trusted blindly:

- 404 on removal: re-read the user's direct groups. Not a member → AlreadyDone (what a
  retry after a crash sees); still a member → Transient (replicas disagree, try later);
  user gone → NotFound.
- 400 (or 403) on a group that is synced from on-premises AD or has dynamic membership
  → Rejected, telling the admin what to do instead (the ``onprem_ad`` workflow, or the
  group's membership rule).
"""

from __future__ import annotations

from collections.abc import Sequence

from reclaim.connectors.errors import AlreadyDone, ConnectorError, NotFound, Rejected, Transient
from reclaim.connectors.graph.batch import BatchPart, run_batches
from reclaim.connectors.graph.messages import GraphRequest, GraphResponse, path_segment, user_path
from reclaim.connectors.graph.models import GraphGroup, MemberResult, Outcome
from reclaim.connectors.graph.paging import MAX_TOP, iter_values
from reclaim.connectors.graph.reads import get_group
from reclaim.connectors.graph.transport import GraphTransport

ON_PREM_MARKER = "on-premises mastered"
ALREADY_EXISTS_MARKER = "already exist"


def synced_group_message(group: str) -> str:
    """Why a synced group cannot be changed here, and what to use instead."""
    return (
        f"group {group} is synchronised from on-premises Active Directory: its membership "
        "can only be changed there. Use the onprem_ad workflow for this policy."
    )


def dynamic_group_message(group: str) -> str:
    """Why a dynamic group's members cannot be removed."""
    return (
        f"group {group} has dynamic membership: members are set by its membership rule, "
        "not by Reclaim. Change the rule (or the user's attributes) instead."
    )


def unwritable_reason(group: GraphGroup) -> str | None:
    """Why Graph will refuse membership changes to ``group``, or None."""
    label = f"{group.display_name!r} ({group.id})"
    if group.is_synced:
        return synced_group_message(label)
    if group.is_dynamic:
        return dynamic_group_message(label + f", rule {group.membership_rule!r}")
    return None


def member_ref_path(group_id: str, user_id: str) -> str:
    """``/groups/{g}/members/{u}/$ref``: removes the membership, never the user."""
    return f"/groups/{path_segment(group_id)}/members/{path_segment(user_id)}/$ref"


def direct_group_ids(transport: GraphTransport, user_id: str) -> set[str]:
    """The groups ``user_id`` is a *direct* member of: ``GET /users/{u}/memberOf``.

    Chosen for membership checks because it is strongly consistent (unlike ``$filter``
    on ``/members``, an advanced query served from an eventually consistent index - wrong
    right after a write, which is when we check), direct (unlike ``checkMemberGroups``,
    which is transitive: a user inheriting through a nested group is "a member" there, yet
    cannot be removed from this group), and cheap: 1 resource unit per page of 999.
    """
    req = GraphRequest(
        "GET",
        f"{user_path(user_id)}/memberOf",
        params={"$select": "id", "$top": str(MAX_TOP)},
    )
    return {str(item.get("id")) for item in iter_values(transport, req)}


def is_member(
    transport: GraphTransport, *, group_id: str, user_id: str, transitive: bool = False
) -> bool:
    """Direct membership via :func:`direct_group_ids`; transitive via checkMemberGroups.

    Transitive: ``POST /users/{u}/checkMemberGroups {"groupIds": [g]}`` (4 resource
    units, one call whatever the nesting depth).
    """
    if not transitive:
        return group_id in direct_group_ids(transport, user_id)
    req = GraphRequest(
        "POST", f"{user_path(user_id)}/checkMemberGroups", body={"groupIds": [group_id]}
    )
    resp = transport.send(req)
    resp.raise_for_error()
    return group_id in (resp.json().get("value") or [])


def _refusal(
    transport: GraphTransport, resp: GraphResponse, *, group_id: str, group: GraphGroup | None
) -> ConnectorError:
    """Interpret a 400/403 on a membership write; may read the group to explain it."""
    failure = resp.failure
    if ON_PREM_MARKER in failure.message.lower():
        return Rejected(synced_group_message(group_id), code="graph-synced-group")
    if group is None:
        try:
            group = get_group(transport, group_id)
        except NotFound:
            return NotFound(f"group {group_id} does not exist", code="graph-404-group")
    reason = unwritable_reason(group)
    if reason:
        kind = "graph-synced-group" if group.is_synced else "graph-dynamic-group"
        return Rejected(f"{reason} (Graph: {failure.message})", code=kind)
    return resp.error()


def _not_member_any_more(
    transport: GraphTransport, *, group_id: str, user_id: str, groups: set[str] | None = None
) -> ConnectorError:
    """After a 404 on removal: AlreadyDone, or why not (see the module docstring)."""
    if groups is None:
        try:
            groups = direct_group_ids(transport, user_id)
        except NotFound:
            return NotFound(f"user {user_id} does not exist", code="graph-404-user")
    if group_id in groups:
        return Transient(
            f"Graph said user {user_id} is not in group {group_id}, but it still lists the "
            "membership; retry later",
            code="graph-inconsistent",
        )
    return AlreadyDone(
        f"user {user_id} is not a member of group {group_id}", code="graph-not-member"
    )


def remove_member(transport: GraphTransport, *, group_id: str, user_id: str) -> None:
    """``DELETE /groups/{g}/members/{u}/$ref``; 204 → done, else a connector error.

    Raises AlreadyDone (verified), NotFound, Rejected (synced or dynamic group, with the
    way forward), StopRun (403: GroupMember.ReadWrite.All missing), Transient.
    """
    transport.check_write(f"removal of {user_id} from {group_id}")
    resp = transport.send(GraphRequest("DELETE", member_ref_path(group_id, user_id)))
    if resp.ok:
        return
    raise _removal_error(transport, resp, group_id=group_id, user_id=user_id)


def _removal_error(
    transport: GraphTransport, resp: GraphResponse, *, group_id: str, user_id: str
) -> ConnectorError:
    if resp.status == 404:
        return _not_member_any_more(transport, group_id=group_id, user_id=user_id)
    if resp.status in (400, 403):
        return _refusal(transport, resp, group_id=group_id, group=None)
    return resp.error()


def add_member(transport: GraphTransport, *, group_id: str, user_id: str) -> None:
    """``POST /groups/{g}/members/$ref {"@odata.id": "{root}/directoryObjects/{u}"}``.

    Raises AlreadyDone when the user already is a member ("One or more added object
    references already exist"), NotFound for an unknown user or group, Rejected for
    synced or dynamic groups.
    """
    transport.check_write(f"adding {user_id} to {group_id}")
    ref = f"{transport.settings.api_root}/directoryObjects/{path_segment(user_id)}"
    req = GraphRequest(
        "POST", f"/groups/{path_segment(group_id)}/members/$ref", body={"@odata.id": ref}
    )
    resp = transport.send(req)
    if resp.ok:
        return
    if resp.status == 400 and ALREADY_EXISTS_MARKER in resp.failure.message.lower():
        raise AlreadyDone(
            f"user {user_id} already is a member of group {group_id}", code="graph-member"
        )
    if resp.status in (400, 403):
        raise _refusal(transport, resp, group_id=group_id, group=None)
    raise resp.error()


def remove_members(
    transport: GraphTransport, *, group_id: str, user_ids: Sequence[str]
) -> list[MemberResult]:
    """Remove many users: ``$batch`` of ≤ 20 ``DELETE .../members/{u}/$ref`` per request.

    One ``GET /groups/{g}`` first: a synced or dynamic group rejects everyone without a
    single write. Batches run concurrently (``settings.concurrency``) and are paced by
    the write budget (20/s sustained per app + tenant); 429 parts are retried alone.
    404 parts are verified with batched ``GET /users/{u}/memberOf``. Returns one result
    per distinct user, in input order; after a StopRun (kill switch, revoked
    credentials) the users not yet handled are STOPPED.
    """
    transport.check_write(f"removal of {len(user_ids)} members from {group_id}")
    users = list(dict.fromkeys(user_ids))
    if not users:
        return []
    group = get_group(transport, group_id)
    reason = unwritable_reason(group)
    if reason:
        code = "graph-synced-group" if group.is_synced else "graph-dynamic-group"
        return [MemberResult(u, Outcome.REJECTED, Rejected(reason, code=code)) for u in users]
    parts = [
        BatchPart(str(i), GraphRequest("DELETE", member_ref_path(group_id, u)))
        for i, u in enumerate(users)
    ]
    answers = run_batches(transport, parts)
    results: dict[str, MemberResult] = {}
    unverified: list[str] = []
    for i, user in enumerate(users):
        answer = answers[str(i)]
        if isinstance(answer, ConnectorError):
            results[user] = MemberResult.failed(user, answer)
        elif answer.ok:
            results[user] = MemberResult(user, Outcome.DONE)
        elif answer.status == 404:
            unverified.append(user)
        elif answer.status in (400, 403):
            error = _refusal(transport, answer, group_id=group_id, group=group)
            results[user] = MemberResult.failed(user, error)
        else:
            results[user] = MemberResult.failed(user, answer.error())
    results.update(_verify_removed(transport, group_id, unverified))
    return [results[u] for u in users]


def are_members(
    transport: GraphTransport, *, group_id: str, user_ids: Sequence[str]
) -> dict[str, bool | ConnectorError]:
    """Direct membership of many users at once: ``$batch`` of ``GET /users/{u}/memberOf``
    (strongly consistent, like :func:`is_member`); a user in more than 999 groups has
    the rest read page by page. Maps each user id to True/False or its error (NotFound
    for a user that does not exist)."""
    users = list(dict.fromkeys(user_ids))
    if not users:
        return {}
    select = {"$select": "id", "$top": str(MAX_TOP)}
    parts = [
        BatchPart(str(i), GraphRequest("GET", f"{user_path(u)}/memberOf", params=select))
        for i, u in enumerate(users)
    ]
    answers = run_batches(transport, parts)
    out: dict[str, bool | ConnectorError] = {}
    for i, user in enumerate(users):
        answer = answers[str(i)]
        if isinstance(answer, ConnectorError):
            out[user] = answer
        elif answer.status == 404:
            out[user] = NotFound(f"user {user} does not exist", code="graph-404-user")
        elif not answer.ok:
            out[user] = answer.error()
        else:
            page = answer.json()
            groups = {str(v.get("id")) for v in page.get("value") or [] if isinstance(v, dict)}
            if page.get("@odata.nextLink"):  # in more than 999 groups: read them all
                groups |= direct_group_ids(transport, user)
            out[user] = group_id in groups
    return out


def _verify_removed(
    transport: GraphTransport, group_id: str, users: list[str]
) -> dict[str, MemberResult]:
    """Re-read the direct groups of users whose removal answered 404 (batched)."""
    out: dict[str, MemberResult] = {}
    for user, found in are_members(transport, group_id=group_id, user_ids=users).items():
        if isinstance(found, ConnectorError):
            error = found
        else:
            groups = {group_id} if found else set()
            error = _not_member_any_more(transport, group_id=group_id, user_id=user, groups=groups)
        out[user] = MemberResult.failed(user, error)
    return out
