"""One cycle of a policy: verdicts → cases → plan → what may go ahead.

A cycle (a scheduler tick, ``reclaim run``) does, for one policy:

1. evaluate every member's verdict as of today;
2. close open cases that no longer make sense (the user left the group, or is now
   excluded) and open a case for each new candidate, unless they have an open case or
   are within the keep cool-down;
3. build the plan over every open case whose next step is an ask or a removal, with
   the policy's caps, the mass-removal guard and the kill switch applied;
4. store the plan and *authorize* what it allows: each planned ask and removal gets
   its idempotency key written on the case and becomes due now. Removals of a policy
   with ``require_approval`` are authorized only once an admin approved their keys.
   After the commit, a policy the mass-removal guard halted is told to admins
   (:mod:`reclaim.services.halt_alerts`).

A policy whose group Reclaim can never write (synced from on-prem AD under
``entra_id``, or dynamic: :mod:`reclaim.domain.plan_groups`, judged from the last
directory sync) opens no new case and authorizes nothing: the plan lists who would have
been asked or removed as ``blocked_group``, with an alert saying what to change. Cases
opened before the flag was seen are held where they stand.

Nothing is sent here: workers execute the authorized steps. A preview
(``reclaim plan``) runs 1–3 without writing anything but the plan itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, select, update

from reclaim.config import SafetySettings, Settings
from reclaim.domain import case as dc
from reclaim.domain.case import Action, CancelCause, Case, CaseState, IllegalTransition
from reclaim.domain.case_steps import StepKind, can_ask_again, next_step
from reclaim.domain.plan import ItemStatus, Plan, PolicyInput, Proposal, build_plan, proposal_for
from reclaim.domain.plan_groups import GroupCheck, GroupFacts, group_check
from reclaim.domain.policy import Policy, Workflow
from reclaim.domain.protection import protected_group_reason, protected_user_reason
from reclaim.domain.usage import VerdictKind
from reclaim.services.decisions import MemberVerdict, PolicyVerdicts, evaluate
from reclaim.services.halt_alerts import notify_halts
from reclaim.store import cases as store
from reclaim.store.case_claims import authorize
from reclaim.store.directory_tables import directory_groups
from reclaim.store.leases import paused_in_store
from reclaim.store.plans import PlanStatus, approved, save_plan
from reclaim.store.tables import directory_writes, policies
from reclaim.store.usage_queries import day_number

#: Closed states after which a user is not asked again before the keep cool-down ends:
#: they kept the license, could not be reached, or a removal failed and needs a person.
COOLDOWN_STATES = (
    CaseState.ANSWERED_KEEP,
    CaseState.NO_RESPONSE,
    CaseState.COULD_NOT_ASK,
    CaseState.FAILED,
    CaseState.RESTORED,
)
GATED = frozenset({StepKind.ASK, StepKind.REMOVE})


def due_at(
    case: Case,
    *,
    authorized_key: str | None,
    policy: Policy,
    now: dt.datetime,
    blocked: bool = False,
) -> int | None:
    """When a case next needs a worker (epoch seconds), or None when it waits for a
    plan, an approval or a person. Asks and removals are due only once authorized.

    ``blocked``: the policy's group cannot be written (synced, dynamic): asks,
    reminders and removals all wait, even those authorized before that was seen;
    nobody is pressed to release what Reclaim could not take back.
    """
    step = next_step(case, policy, now)
    if step.kind is StepKind.DONE:
        return None
    if step.kind is StepKind.WAIT:
        return store.to_ts(step.due_at)
    if step.kind in GATED and (blocked or step.idempotency_key != authorized_key):
        return None
    if blocked and step.kind is StepKind.REMIND:
        return None
    return int(now.timestamp())


def paused(conn: Connection, settings: Settings) -> bool:
    """The kill switch as every process sees it: config or ``reclaim pause``."""
    return settings.safety.paused or paused_in_store(conn)


@dataclass
class CycleOutcome:
    """What a cycle (or its preview) decided for one policy."""

    policy: str
    plan: Plan
    plan_id: int | None = None
    breakdown: dict[str, int] = field(default_factory=dict)
    opened: list[str] = field(default_factory=list)
    closed: list[tuple[str, str]] = field(default_factory=list)  # (user, cause)
    authorized: int = 0
    awaiting_approval: int = 0
    blocked: str | None = None  # why the group cannot be written; nobody asked or removed


@dataclass
class _Work:
    """One open (or about to open) case and what the cycle learned about it."""

    case: Case
    stored: store.StoredCase | None
    user_id: int
    verdict: MemberVerdict | None
    queued: bool = False  # a removal waits for a person (manual task): not plan work


def _queued_keys(conn: Connection, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(keys), 900):
        found.update(
            str(k)
            for (k,) in conn.execute(
                select(directory_writes.c.idempotency_key).where(
                    directory_writes.c.idempotency_key.in_(keys[i : i + 900]),
                    directory_writes.c.result == "queued",
                )
            )
        )
    return found


def group_facts(conn: Connection, policy_id: int) -> GroupFacts | None:
    """What the last directory sync stored about the policy's group (None: never synced)."""
    row = conn.execute(
        select(
            directory_groups.c.object_id,
            directory_groups.c.display_name,
            directory_groups.c.is_dynamic,
            directory_groups.c.is_synced,
            directory_groups.c.synced_at,
        ).where(directory_groups.c.policy_id == policy_id)
    ).first()
    if row is None:
        return None
    at = dt.datetime.fromtimestamp(row.synced_at, dt.UTC)
    return GroupFacts(row.object_id, row.display_name, row.is_dynamic, row.is_synced, at)


def check_group(conn: Connection, policy: Policy, policy_id: int) -> GroupCheck:
    """Whether the policy's group can be written, from the last directory sync."""
    return group_check(policy, group_facts(conn, policy_id))


def _cancel_protected(case: Case, why: str, *, at: dt.datetime) -> tuple[Case, str] | None:
    """Close a protected person's open case (None once a removal went out: the write
    gate refuses it, and the case shows why)."""
    try:
        moved = dc.cancel(case, at=at, cause=CancelCause.EXCLUDED, detail=why)
    except IllegalTransition:
        return None
    return moved, moved.history[-1].cause


def _close_if_needed(work: _Work, policy: Policy, *, at: dt.datetime) -> tuple[Case, str] | None:
    """The closing transition for an open case the verdicts no longer support.

    A removal already sent to on-prem AD is left to the executor even when the member
    is gone: its retry moves it to ``awaiting_sync``, since gone from AD is not yet gone
    from Entra ID (where the license is granted)."""
    case = work.case
    try:
        if work.verdict is None:  # no longer a member of the group
            if case.state is CaseState.AWAITING_SYNC:
                return None  # the sync check settles it
            sent = case.state is CaseState.REMOVAL_PENDING and case.attempts > 0
            if sent and policy.workflow is Workflow.ONPREM_AD:
                return None
            moved = dc.member_absent(case, at=at)
            return moved, moved.history[-1].cause
        if work.verdict.verdict.kind is VerdictKind.EXCLUDED:
            moved = dc.cancel(
                case, at=at, cause=CancelCause.EXCLUDED, detail=work.verdict.verdict.reason
            )
            return moved, moved.history[-1].cause
    except IllegalTransition:
        return None  # a removal already went out: finish it first
    return None


def _proposals(works: Sequence[_Work], policy: Policy, now: dt.datetime) -> list[Proposal]:
    out = []
    for w in works:
        if w.queued:
            continue
        step = next_step(w.case, policy, now)
        v = w.verdict.verdict if w.verdict else None
        reason = v.reason if v else (w.stored.reason if w.stored else "")
        proposal = proposal_for(w.case, step, reason=reason, last_used=v.last_used if v else None)
        if proposal is not None:
            out.append(proposal)
    return out


def _gather(
    conn: Connection,
    *,
    pv: PolicyVerdicts,
    policy_id: int,
    now: dt.datetime,
) -> tuple[list[_Work], list[_Work]]:
    """(open cases, new cases to open) for one policy."""
    policy = pv.policy
    by_user = {r.user_id: r for r in pv.rows()}
    open_cases = store.find_cases(conn, policy_id=policy_id, open_only=True)
    queued = _queued_keys(conn, [s.remove_key for s in open_cases if s.case.attempts])
    existing = [
        _Work(s.case, s, s.user_id, by_user.get(s.user_id), queued=s.remove_key in queued)
        for s in open_cases
    ]
    have_case = {s.user_id for s in open_cases}
    cycles = store.next_cycles(conn, policy_id)
    kept = store.last_closed(conn, policy_id, COOLDOWN_STATES)
    today = now.date()
    new = []
    for r in sorted(pv.candidates(), key=lambda r: r.user):  # case ids follow names
        if r.user_id in have_case:
            continue
        last_kept = kept.get(r.user_id)
        kept_on = None if last_kept is None else dt.datetime.fromtimestamp(last_kept, dt.UTC).date()
        if not can_ask_again(last_kept_on=kept_on, policy=policy, today=today):
            continue
        v = r.verdict
        case = dc.open_case(
            policy=policy.name,
            user=r.user,
            cycle=cycles.get(r.user_id, 1),
            at=now,
            data={
                "verdict": v.kind.value,
                "reason": v.reason,
                "last_used": v.last_used.isoformat() if v.last_used else None,
                "minutes_in_window": v.minutes_in_window,
            },
        )
        new.append(_Work(case, None, r.user_id, r))
    return existing, new


def preview_policy(
    conn: Connection,
    *,
    pv: PolicyVerdicts,
    policy_id: int,
    now: dt.datetime,
    safety: SafetySettings,
) -> tuple[PolicyInput, list[_Work], list[_Work]]:
    """What a cycle would plan for one policy now, without writing anything: protected
    people left out and a protected group held, as :func:`apply_cycle` does."""
    existing, new = _gather(conn, pv=pv, policy_id=policy_id, now=now)
    still_open = [
        w
        for w in existing
        if _close_if_needed(w, pv.policy, at=now) is None
        and not protected_user_reason(safety.protected_users, w.case.user)
    ]
    new = [w for w in new if not protected_user_reason(safety.protected_users, w.case.user)]
    group = _protect_group(check_group(conn, pv.policy, policy_id), pv.policy, safety)
    proposals = _proposals([*still_open, *new], pv.policy, now)
    return PolicyInput(pv.policy, pv.group_size, proposals, group), existing, new


def _protect_group(group: GroupCheck, policy: Policy, safety: SafetySettings) -> GroupCheck:
    """A protected group is held like an unwritable one: planned, never opened."""
    if not group.blocked and (why := protected_group_reason(safety.protected_groups, policy)):
        return GroupCheck(blocked=why, notes=group.notes)
    return group


def _lock_policy(conn: Connection, policy_id: int) -> None:
    """Serialize cycles of one policy across processes for this transaction: a no-op
    update takes the row lock on PostgreSQL and the write lock on SQLite, first thing."""
    conn.execute(
        update(policies).where(policies.c.id == policy_id).values(updated=policies.c.updated)
    )


def apply_cycle(
    conn: Connection,
    *,
    pv: PolicyVerdicts,
    policy_id: int,
    settings: Settings,
    now: dt.datetime,
) -> CycleOutcome:
    """Run steps 2–4 of a cycle in the caller's transaction (see the module docstring)."""
    _lock_policy(conn, policy_id)
    policy = pv.policy
    now_s = int(now.timestamp())
    existing, new = _gather(conn, pv=pv, policy_id=policy_id, now=now)
    safety = settings.safety
    group = _protect_group(check_group(conn, policy, policy_id), policy, safety)
    # Protected people are never asked or removed: no case, and an open one is closed.
    new = [w for w in new if not protected_user_reason(safety.protected_users, w.case.user)]
    held = new if group.blocked else []  # listed in the plan, never opened
    new = [] if group.blocked else new
    closed: list[tuple[str, str]] = []
    opened: list[str] = []
    live: list[_Work] = []
    for w in existing:
        stored = w.stored
        assert stored is not None
        leased = stored.lease_owner is not None and (stored.lease_until or 0) >= now_s
        closing = None if leased else _close_if_needed(w, pv.policy, at=now)
        protected = protected_user_reason(safety.protected_users, w.case.user)
        if closing is None and protected and not leased:
            closing = _cancel_protected(w.case, protected, at=now)
        if closing is None:
            live.append(w)
            continue
        moved, cause = closing
        store.save_case(conn, stored, moved, next_due_at=None)
        closed.append((w.case.user, cause))
    for w in new:
        v = w.verdict
        assert v is not None
        w.stored = store.insert_case(
            conn,
            w.case,
            policy_id=policy_id,
            user_id=w.user_id,
            verdict=v.verdict.kind.value,
            reason=v.verdict.reason,
            last_used=day_number(v.verdict.last_used) if v.verdict.last_used else None,
            next_due_at=None,
        )
        opened.append(w.case.user)
        live.append(w)
    proposals = _proposals([*live, *held], policy, now)
    plan = build_plan(
        inputs=[PolicyInput(policy, pv.group_size, proposals, group)],
        as_of=now.date(),
        created_at=now,
        paused=paused(conn, settings),
    )
    outcome = CycleOutcome(
        policy.name,
        plan,
        breakdown=pv.breakdown(),
        opened=opened,
        closed=closed,
        blocked=group.blocked,
    )
    by_user = {w.case.user: w for w in live}
    items = plan.policies[0].items if plan.policies else ()
    removal_keys = [i.idempotency_key for i in items if i.action is Action.REMOVE]
    ok_keys = approved(conn, removal_keys) if policy.require_approval else set(removal_keys)
    allow: dict[int, str] = {}
    for item in items:
        if item.status is ItemStatus.BLOCKED_GROUP:
            continue  # held: the group cannot be written (the plan's alert says why)
        w = by_user[item.user]
        assert w.stored is not None
        if item.action is Action.ASK and item.status is not ItemStatus.PLANNED:
            continue
        if item.action is Action.REMOVE:
            if item.status not in (ItemStatus.PLANNED, ItemStatus.BLOCKED_PAUSED):
                continue
            if item.idempotency_key not in ok_keys:
                outcome.awaiting_approval += 1
                continue
        if w.stored.authorized_key != item.idempotency_key:
            allow[w.stored.id] = item.idempotency_key
    status = PlanStatus.AWAITING_APPROVAL if outcome.awaiting_approval else PlanStatus.APPLIED
    outcome.plan_id = save_plan(conn, plan, kind="run", status=status)
    authorize(conn, list(allow), key_of=allow, plan_id=outcome.plan_id, now=now_s)
    outcome.authorized = len(allow)
    # Everything else: when is it next due (a wait, a parked removal, a reminder)?
    for w in live:
        assert w.stored is not None
        if w.stored.id in allow or w.queued:
            continue
        if w.stored.lease_owner is not None and (w.stored.lease_until or 0) >= now_s:
            continue  # a worker holds it and will set its next due time
        due = due_at(
            w.case,
            authorized_key=w.stored.authorized_key,
            policy=policy,
            now=now,
            blocked=bool(group.blocked),
        )
        if due != w.stored.next_due_at:
            store.set_columns(conn, w.stored, next_due_at=due)
    return outcome


def run_cycle(
    engine: Engine, *, settings: Settings, policy: Policy, now: dt.datetime
) -> CycleOutcome:
    """Run one cycle of ``policy`` now: verdicts, cases, plan, authorizations."""
    pv = evaluate(
        engine,
        [policy],
        as_of=now.date(),
        now=now,
        freshness_days=settings.usage.freshness_days,
        configured=settings.policies,
    )[0]
    with engine.begin() as conn:
        outcome = apply_cycle(conn, pv=pv, policy_id=pv.policy_id, settings=settings, now=now)
    # After the commit: a halt is told to admins (mail, dashboard) only once it is real.
    for part in outcome.plan.policies:
        notify_halts(engine, settings=settings, plan=part, plan_id=outcome.plan_id, now=now)
    return outcome
