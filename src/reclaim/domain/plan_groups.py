"""Whether a policy's license group can be written at all, judged before anyone is asked.

Graph refuses membership changes to a group synchronised from on-premises AD
(``onPremisesSyncEnabled``) and to a group with dynamic membership (``groupTypes``
contains ``DynamicMembership``). Asking people whose seat can never be taken back wastes
their time and ends in failed cases, so the plan flags such a group and holds its
people instead (:func:`group_check`):

- synced from on-prem AD, under workflow ``entra_id``: blocked, "use workflow: onprem_ad"
  (the ``onprem_ad`` workflow writes to AD itself, so a synced group is what it expects);
- dynamic membership, under any workflow: blocked, "change the rule";
- no directory sync has stored the group yet: the plan says the group is unchecked
  rather than guessing (workflow ``entra_id`` only: there it decides whether removals
  can work at all). Nothing is held on that account.

The facts come from the last directory sync (``directory_groups``), never from a live
Graph call: a plan is built from stored facts only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from reclaim.domain.policy import Policy, Workflow


@dataclass(frozen=True, slots=True)
class GroupFacts:
    """What the last directory sync stored about a policy's Entra group."""

    object_id: str
    display_name: str
    is_dynamic: bool
    is_synced: bool
    synced_at: dt.datetime


@dataclass(frozen=True, slots=True)
class GroupCheck:
    """``blocked``: why nobody of this policy is asked or removed (None: go ahead);
    ``notes``: alerts that change nothing (the group was not checked)."""

    blocked: str | None = None
    notes: tuple[str, ...] = ()


NO_CHECK = GroupCheck()  # nothing known against the group


def group_check(policy: Policy, facts: GroupFacts | None) -> GroupCheck:
    """Judge the policy's group from the stored sync facts (see the module docstring)."""
    if facts is None:
        if policy.workflow is Workflow.ENTRA_ID and policy.group.entra_id:
            return GroupCheck(
                notes=(
                    f"group {policy.group.entra_id} not checked: no directory sync has run "
                    "for this policy yet, so whether it is synced from on-premises AD or has "
                    "dynamic membership is unknown (run: reclaim directory sync --policy "
                    f"{policy.name!r})",
                )
            )
        return GroupCheck()
    label = f"{facts.display_name!r} ({facts.object_id})"
    seen = f"directory sync of {facts.synced_at:%Y-%m-%d %H:%M} UTC"
    if facts.is_dynamic:
        return GroupCheck(
            blocked=(
                f"group {label} has dynamic membership ({seen}): its rule sets the members, "
                "so nobody is asked or removed; dynamic membership: change the rule (or the "
                "users' attributes) instead"
            )
        )
    if facts.is_synced and policy.workflow is Workflow.ENTRA_ID:
        return GroupCheck(
            blocked=(
                f"group {label} is synchronised from on-premises AD ({seen}): Graph cannot "
                "change its members, so nobody is asked or removed; use workflow: onprem_ad "
                "for this policy"
            )
        )
    return GroupCheck()
