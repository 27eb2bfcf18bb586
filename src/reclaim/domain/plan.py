"""A plan: what one run would do, shown before anything happens, and its approval.

The runner turns each due case step into a :class:`Proposal` (:func:`proposal_for`),
and :func:`build_plan` applies the blast-radius rules per policy:

1. removals are ordered by priority (retries of writes already sent, then explicit
   releases, then timeout releases, then ask-permission-off), and within a priority
   fairly (:func:`removal_order`): longest unused first (never used before any use),
   then longest waiting (the case's opening), then the user key. Waiting time, not
   the name, decides between equals, so someone deferred by a cap moves up run after
   run and is never overtaken by a later case of the same standing;
2. the cap is ``min(max_per_run, max_percent_of_group % of the group)``, at least 1
   when the percentage and group are non-zero (a small group can still move);
3. wanted ≤ cap: all planned. Over the cap: the first *cap* are planned, the rest are
   listed as ``deferred_by_cap`` with an alert;
4. the mass-removal guard **halts** the policy (every item ``halted``, nothing done,
   an alert) when removals exceed ``MassGuard.halt_factor`` × cap, or when asks plus
   removals exceed ``MassGuard.halt_percent`` % of a group of at least
   ``MassGuard.min_group_size``: that much at once points to broken data (an app's
   usage feed stopped) rather than to real disuse, so truncating would still act on it;
5. the kill switch (``paused``) blocks every planned removal; they stay listed;
6. a group Reclaim can never write (synced from on-prem AD under ``entra_id``, or with
   dynamic membership: :mod:`reclaim.domain.plan_groups`) blocks the whole policy before
   anyone is asked: every item ``blocked_group``, an alert with the way forward.

Asks are not capped (they take nothing away) but are halted with their policy.

A plan serializes to JSON-able dicts and has a content hash over everything but
``created_at``, so a plan rebuilt from the same facts has the same hash and an
:class:`Approval` names exactly what it allows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from decimal import Decimal
from enum import StrEnum
from typing import Any

from reclaim.domain.case import Action, Case, CaseState, idempotency_key
from reclaim.domain.case_steps import Step, StepKind
from reclaim.domain.plan_groups import NO_CHECK, GroupCheck
from reclaim.domain.policy import Caps, Policy, SeatCost
from reclaim.domain.savings import Savings, by_currency, seat_savings

PLAN_VERSION = 1


class Basis(StrEnum):
    """Why an item is in the plan."""

    ASK = "ask"  # a candidate to ask
    RETRY = "retry"  # a removal already sent (or failed and retried): finish it first
    RELEASED = "released"  # the employee said "release"
    NO_RESPONSE = "no_response"  # timed out and the policy's default is release
    ASK_PERMISSION_OFF = "ask_permission_off"  # the policy does not ask


_RANK = {Basis.RETRY: 0, Basis.RELEASED: 1, Basis.NO_RESPONSE: 2, Basis.ASK_PERMISSION_OFF: 3}
_ENTRY_BASIS = {
    "ask_permission_off": Basis.ASK_PERMISSION_OFF,
    "released": Basis.RELEASED,
    "no_response": Basis.NO_RESPONSE,
    "admin_retry": Basis.RETRY,
}


class ItemStatus(StrEnum):
    """What will happen to an item when the plan runs."""

    PLANNED = "planned"
    DEFERRED_BY_CAP = "deferred_by_cap"
    HALTED = "halted"  # mass-removal guard tripped for the policy
    BLOCKED_PAUSED = "blocked_paused"  # kill switch
    BLOCKED_GROUP = "blocked_group"  # the group cannot be written (synced / dynamic)


@dataclass(frozen=True, slots=True)
class Proposal:
    """One thing a run would like to do for one case."""

    user: str
    cycle: int
    basis: Basis
    reason: str
    last_used: dt.date | None = None
    waiting_since: dt.datetime | None = None  # the case's opening; None: not known

    @property
    def action(self) -> Action:
        """Asking, or removing."""
        return Action.ASK if self.basis is Basis.ASK else Action.REMOVE


def proposal_for(
    case: Case, step: Step, *, reason: str, last_used: dt.date | None
) -> Proposal | None:
    """The plan proposal for a case's next step, or ``None`` when it is not plan work
    (reminders, waits, cancels and keep-by-default timeouts run without a plan)."""
    if step.kind is StepKind.ASK:
        basis = Basis.ASK
    elif step.kind is StepKind.TIMEOUT and step.release:
        basis = Basis.NO_RESPONSE
    elif step.kind is not StepKind.REMOVE:
        return None
    elif case.attempts:
        basis = Basis.RETRY
    elif case.state is CaseState.CANDIDATE:
        basis = Basis.ASK_PERMISSION_OFF
    elif case.state is CaseState.ANSWERED_RELEASE:
        basis = Basis.RELEASED
    else:  # removal_pending: the event that entered it says why
        entry = next(e for e in reversed(case.history) if e.from_state is not e.to_state)
        basis = _ENTRY_BASIS.get(entry.cause, Basis.RETRY)
    return Proposal(case.user, case.cycle, basis, reason, last_used, case.opened_at)


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One line of the plan, with the key the executor must use for its side effect."""

    user: str
    cycle: int
    action: Action
    basis: Basis
    status: ItemStatus
    reason: str
    last_used: dt.date | None
    idempotency_key: str
    waiting_since: dt.datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (``waiting_since`` only when known, so plans stored before it
        existed keep their content hash)."""
        last, since = self.last_used, self.waiting_since
        out = {
            **{f.name: getattr(self, f.name) for f in fields(self)},
            "last_used": last.isoformat() if last else None,
            "waiting_since": since.isoformat() if since else None,
        }
        if since is None:
            del out["waiting_since"]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlanItem:
        """Inverse of :meth:`to_dict`."""
        last, since = d["last_used"], d.get("waiting_since")
        return cls(
            **{
                **d,
                "action": Action(d["action"]),
                "basis": Basis(d["basis"]),
                "status": ItemStatus(d["status"]),
                "last_used": dt.date.fromisoformat(last) if last else None,
                "waiting_since": dt.datetime.fromisoformat(since) if since else None,
            }
        )


@dataclass(frozen=True, slots=True)
class MassGuard:
    """When "over the cap" becomes "something is wrong: stop" (see the module doc)."""

    halt_factor: float = 2.0
    halt_percent: float = 50.0
    min_group_size: int = 20  # below it, the percentage trigger is noise, not a signal


def effective_cap(caps: Caps, group_size: int) -> int:
    """How many removals one run may make in a group of ``group_size`` members."""
    pct = Decimal(str(caps.max_percent_of_group))
    by_percent = math.floor(pct * group_size / 100)
    if pct > 0 and group_size > 0:
        by_percent = max(1, by_percent)
    return min(caps.max_per_run, by_percent)


@dataclass(frozen=True, slots=True)
class PolicyPlan:
    """The plan for one policy."""

    policy: str
    group_size: int
    seat_cost: SeatCost
    require_approval: bool
    cap: int
    halted: bool
    alerts: tuple[str, ...]
    items: tuple[PlanItem, ...]

    def count(self, action: Action, status: ItemStatus | None = None) -> int:
        """How many items have this action (and status, if given)."""
        return sum(
            1 for i in self.items if i.action is action and (status is None or i.status is status)
        )

    def savings(self) -> Savings:
        """What the planned removals save."""
        return seat_savings(self.count(Action.REMOVE, ItemStatus.PLANNED), self.seat_cost)

    def held_savings(self) -> Savings:
        """What the removals held back (cap, guard, kill switch) would save."""
        held = self.count(Action.REMOVE) - self.count(Action.REMOVE, ItemStatus.PLANNED)
        return seat_savings(held, self.seat_cost)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (counts and savings included for readers; recomputed on load)."""
        counts = Counter(f"{i.action.value}_{i.status.value}" for i in self.items)
        return {
            "policy": self.policy,
            "group_size": self.group_size,
            "seat_cost": {
                "amount": str(self.seat_cost.amount),
                "currency": self.seat_cost.currency,
            },
            "require_approval": self.require_approval,
            "cap": self.cap,
            "halted": self.halted,
            "alerts": list(self.alerts),
            "counts": dict(sorted(counts.items())),
            "savings": {"planned": self.savings().to_dict(), "held": self.held_savings().to_dict()},
            "items": [i.to_dict() for i in self.items],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PolicyPlan:
        """Inverse of :meth:`to_dict`."""
        cost = SeatCost(
            amount=Decimal(d["seat_cost"]["amount"]), currency=d["seat_cost"]["currency"]
        )
        return cls(
            d["policy"],
            int(d["group_size"]),
            cost,
            bool(d["require_approval"]),
            int(d["cap"]),
            bool(d["halted"]),
            tuple(d["alerts"]),
            tuple(PlanItem.from_dict(i) for i in d["items"]),
        )


@dataclass(frozen=True, slots=True)
class PolicyInput:
    """One policy's share of a run: the policy, its group's size now, its proposals, and
    what :func:`reclaim.domain.plan_groups.group_check` found about its group."""

    policy: Policy
    group_size: int
    proposals: Sequence[Proposal]
    group: GroupCheck = NO_CHECK


_NEVER = dt.datetime.max.replace(tzinfo=dt.UTC)  # an unknown opening waits behind known ones


def removal_order(p: Proposal) -> tuple[int, bool, dt.date, dt.datetime, str]:
    """The sort key of a removal: priority of its basis, then longest unused (never
    used first, then the oldest last use: the surest cases), then longest waiting (the
    case opened first), then the user key, only so that the order is total and stable.

    A deferred removal keeps its key from run to run while the cases behind it are
    younger, so each run moves it up: every removal is reached after at most (removals
    of its standing ahead of it) / cap runs, however names sort.
    """
    last, since = p.last_used, p.waiting_since
    since = _NEVER if since is None else since if since.tzinfo else since.replace(tzinfo=dt.UTC)
    return (_RANK[p.basis], last is not None, last or dt.date.min, since, p.user)


def plan_policy(inp: PolicyInput, *, paused: bool, guard: MassGuard) -> PolicyPlan:
    """Apply caps, the mass-removal guard and the kill switch to one policy's proposals."""
    policy, group_size = inp.policy, inp.group_size
    seen: dict[str, tuple[Proposal, str]] = {}
    for p in inp.proposals:  # a duplicate tick may propose the same thing twice
        key = idempotency_key(policy=policy.name, user=p.user, cycle=p.cycle, action=p.action)
        seen.setdefault(key, (p, key))
    asks = sorted(
        (pk for pk in seen.values() if pk[0].basis is Basis.ASK), key=lambda pk: pk[0].user
    )
    removals = sorted(
        (pk for pk in seen.values() if pk[0].basis is not Basis.ASK),
        key=lambda pk: removal_order(pk[0]),
    )
    cap = effective_cap(policy.caps, group_size)
    if inp.group.blocked:
        return _blocked(inp, cap, asks + removals)
    wanted = len(removals)
    touched = len(asks) + wanted
    alerts: list[str] = list(inp.group.notes)
    halted = (wanted > cap > 0 and wanted > guard.halt_factor * cap) or (
        group_size >= guard.min_group_size and touched * 100 > guard.halt_percent * group_size
    )
    if halted:
        alerts.append(
            f"mass-removal guard: {len(asks)} asks and {wanted} removals wanted in a group of "
            f"{group_size} (removal cap {cap}); nothing will happen for this policy until an "
            "admin checks the usage data or changes the limits"
        )
    elif wanted > cap:
        alerts.append(
            f"{wanted - cap} of {wanted} removals deferred by the cap of {cap} "
            f"(max_per_run {policy.caps.max_per_run}, "
            f"{policy.caps.max_percent_of_group:g}% of {group_size})"
        )
    if paused and removals and not halted:
        alerts.append(f"kill switch on: {min(wanted, cap)} planned removal(s) blocked")

    def status(rank: int) -> ItemStatus:
        if halted:
            return ItemStatus.HALTED
        if rank >= cap:
            return ItemStatus.DEFERRED_BY_CAP
        return ItemStatus.BLOCKED_PAUSED if paused else ItemStatus.PLANNED

    ask_status = ItemStatus.HALTED if halted else ItemStatus.PLANNED
    items = [_item(p, k, ask_status) for p, k in asks]
    items += [_item(p, k, status(n)) for n, (p, k) in enumerate(removals)]
    return PolicyPlan(
        policy.name,
        group_size,
        policy.seat_cost,
        policy.require_approval,
        cap,
        halted,
        tuple(alerts),
        tuple(items),
    )


def _blocked(inp: PolicyInput, cap: int, items: list[tuple[Proposal, str]]) -> PolicyPlan:
    """A policy whose group cannot be written: everything held, one alert saying why."""
    policy = inp.policy
    asks = sum(1 for p, _ in items if p.basis is Basis.ASK)
    alert = f"{inp.group.blocked} ({asks} ask(s) and {len(items) - asks} removal(s) held)"
    return PolicyPlan(
        policy.name,
        inp.group_size,
        policy.seat_cost,
        policy.require_approval,
        cap,
        False,
        (*inp.group.notes, alert),
        tuple(_item(p, k, ItemStatus.BLOCKED_GROUP) for p, k in items),
    )


def _item(p: Proposal, key: str, status: ItemStatus) -> PlanItem:
    return PlanItem(
        p.user, p.cycle, p.action, p.basis, status, p.reason, p.last_used, key, p.waiting_since
    )


@dataclass(frozen=True, slots=True)
class Plan:
    """What a run would do across policies. Build with :func:`build_plan`."""

    as_of: dt.date
    created_at: dt.datetime
    paused: bool
    policies: tuple[PolicyPlan, ...]

    @property
    def needs_approval(self) -> bool:
        """True when a policy requiring approval has anything planned (asks included)."""
        return any(
            p.require_approval and any(i.status is ItemStatus.PLANNED for i in p.items)
            for p in self.policies
        )

    @property
    def alerts(self) -> tuple[str, ...]:
        """Every policy's alerts, prefixed with the policy name."""
        return tuple(f"{p.policy}: {a}" for p in self.policies for a in p.alerts)

    def savings(self) -> dict[str, Savings]:
        """What the planned removals save, per currency."""
        return by_currency(p.savings() for p in self.policies)

    def _body(self) -> dict[str, Any]:
        return {
            "version": PLAN_VERSION,
            "as_of": self.as_of.isoformat(),
            "paused": self.paused,
            "needs_approval": self.needs_approval,
            "alerts": list(self.alerts),
            "savings": {c: s.to_dict() for c, s in self.savings().items()},
            "policies": [p.to_dict() for p in self.policies],
        }

    def content_hash(self) -> str:
        """SHA-256 over the canonical JSON of the plan, ``created_at`` left out."""
        canonical = json.dumps(self._body(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for ``--json``, the API and storage."""
        body = self._body()
        return {
            **body,
            "created_at": self.created_at.isoformat(),
            "content_hash": self.content_hash(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        """Inverse of :meth:`to_dict`; refuses a plan whose content no longer matches its hash."""
        if d.get("version") != PLAN_VERSION:
            raise ValueError(f"unsupported plan version {d.get('version')!r}")
        plan = cls(
            dt.date.fromisoformat(d["as_of"]),
            dt.datetime.fromisoformat(d["created_at"]),
            bool(d["paused"]),
            tuple(PolicyPlan.from_dict(p) for p in d["policies"]),
        )
        if "content_hash" in d and d["content_hash"] != plan.content_hash():
            raise ValueError("plan content does not match its content_hash")
        return plan


def build_plan(
    *,
    inputs: Sequence[PolicyInput],
    as_of: dt.date,
    created_at: dt.datetime,
    paused: bool,
    guard: MassGuard | None = None,
) -> Plan:
    """The plan for a run over ``inputs``, policies in name order."""
    plans = [plan_policy(i, paused=paused, guard=guard or MassGuard()) for i in inputs]
    return Plan(as_of, created_at, paused, tuple(sorted(plans, key=lambda p: p.policy)))


@dataclass(frozen=True, slots=True)
class Approval:
    """Who approved exactly which plan, and when."""

    plan_hash: str
    approved_by: str
    approved_at: dt.datetime
    note: str = ""

    def covers(self, plan: Plan) -> bool:
        """True when ``plan`` is the very plan approved (same content hash)."""
        return self.plan_hash == plan.content_hash()

    def to_dict(self) -> dict[str, str]:
        """JSON-able form."""
        return {
            "plan_hash": self.plan_hash,
            "approved_by": self.approved_by,
            "approved_at": self.approved_at.isoformat(),
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, str]) -> Approval:
        """Inverse of :meth:`to_dict`."""
        return cls(
            d["plan_hash"],
            d["approved_by"],
            dt.datetime.fromisoformat(d["approved_at"]),
            d.get("note", ""),
        )


def approve(plan: Plan, *, by: str, at: dt.datetime, note: str = "") -> Approval:
    """An approval of this plan by ``by`` at ``at``."""
    if not by.strip():
        raise ValueError("an approval needs the approver's name")
    return Approval(plan.content_hash(), by, at, note)
