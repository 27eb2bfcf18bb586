"""Direct (non-group) license removal, the opt-in second write after a group removal.

A user may hold one of the group's SKUs both through the group and directly; removing
the membership then frees no seat. Off by default (reported, not touched); a policy with
``remove_direct_license: true`` (workflow ``entra_id``) has the executor call
:func:`remove_direct` once the membership is gone.
"""

from __future__ import annotations

import datetime as dt

from reclaim.connectors.errors import ConnectorError
from reclaim.domain import case as dc
from reclaim.domain.policy import Policy
from reclaim.services.runtime import Runtime
from reclaim.store import cases as store
from reclaim.store.writes import begin_write, finish_write, get_write
from reclaim.workflows.gate import Write

LICENSE_ACTION = "remove_license"  # directory_writes.action of a direct-license removal


def remove_direct(
    rt: Runtime, stored: store.StoredCase, policy: Policy, now: dt.datetime
) -> tuple[str, str | None]:
    """After the group removal: with ``remove_direct_license``, also remove the user's
    direct assignments of the group's SKUs; returns (detail for the report, error).

    Its own write under its own key (the removal's key, step 1), through the same gate
    rules as the removal: refused in dry-run or while paused (read again at the moment
    of the write), recorded in ``directory_writes`` before sending. It runs once the
    membership is gone, whether this turn removed it or a retry found it gone, and is
    skipped when an earlier turn finished it, and not recorded at all when the user holds
    none directly. A failure never undoes the group removal: the case is removed, the
    seat held directly is reported as kept, with why (the case's ``last_error``). A
    restore adds the membership back, not the direct assignment; the report says so.
    """
    port = rt.directories(policy)
    read = getattr(port, "direct_license_skus", None)
    remove = getattr(port, "remove_direct_licenses", None)
    if not policy.remove_direct_license or not callable(read) or not callable(remove):
        return "", None
    now_s = int(now.timestamp())
    key = stored.case.key(dc.Action.REMOVE, step=1)
    write = Write(policy, stored.case.user, key, stored.id, stored.plan_id)
    with rt.begin() as conn:
        prior = get_write(conn, key)
    if prior is not None and prior.result in ("done", "already_done"):
        return "", None
    try:
        skus = read(policy=policy, user=stored.case.user)
    except ConnectorError as exc:
        return "", f"direct license not checked: {type(exc).__name__}: {exc.detail}"
    if not skus:
        return "", None  # nothing assigned directly: no write at all
    with rt.begin() as conn:
        why = rt.gate.refusal(conn, write, action=LICENSE_ACTION)
        if why is None:
            begin_write(
                conn,
                key=key,
                case_id=stored.id,
                plan_id=stored.plan_id,
                action=LICENSE_ACTION,
                workflow=port.name,
                now=now_s,
            )
    if why is None:
        with rt.begin() as conn:  # the kill switch, read again at the moment of the write
            if rt.gate.paused(conn):
                why = "paused at the moment of the write; not sent"
                finish_write(conn, key, result="refused", detail=why, now=now_s)
    if why is not None:
        return "", f"direct license kept: {why}"
    try:
        removed = remove(policy=policy, user=stored.case.user, skus=skus)
    except ConnectorError as exc:
        with rt.begin() as conn:
            finish_write(conn, key, result="failed", detail=exc.detail, now=now_s)
        return "", f"direct license kept: {type(exc).__name__}: {exc.detail}"
    with rt.begin() as conn:
        result = "done" if removed else "already_done"
        finish_write(conn, key, result=result, detail=",".join(removed) or None, now=now_s)
    note = "not given back by a restore"
    return (f"direct license removed: {', '.join(removed)} ({note})" if removed else ""), None


def with_detail(detail: str, extra: str | None) -> str:
    """Two report details joined (either may be empty)."""
    return "; ".join(d for d in (detail, extra) if d)
