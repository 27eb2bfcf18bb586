"""How campaigns went, per policy: asked, reminded, answers, silence, failures, speed.

Counted from the cases and their history (not from the notifications outbox), so the
numbers are the same whichever asker the runner used:

- ``sent``: cases asked at least once; ``reminded``: of those, reminded at least once;
- ``answered_keep`` / ``answered_release``: the first (only) answer each case got,
  whatever happened after it (a released case may since be removed or restored);
- ``no_response``: cases whose response timeout applied the policy's default;
- ``could_not_ask``: every channel refused the person (never read as consent);
- ``awaiting``: asked, not answered, not timed out yet;
- ``response_rate``: answered / sent; ``median_hours_to_answer``: from the first ask;
- ``restore_requests``: "I need it back" after a release (regret), and
  ``regret_rate`` = restore requests / released answers.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine, func, select

from reclaim.campaigns.response_writes import RESTORE_REQUESTED
from reclaim.domain.case import CaseState
from reclaim.store.tables import case_events, cases, policies


@dataclass(frozen=True, slots=True)
class CampaignStats:
    """One policy's campaign numbers (see the module docstring)."""

    policy: str
    sent: int = 0
    reminded: int = 0
    answered_keep: int = 0
    answered_release: int = 0
    no_response: int = 0
    could_not_ask: int = 0
    awaiting: int = 0
    restore_requests: int = 0
    median_hours_to_answer: float | None = None

    @property
    def answered(self) -> int:
        """Answers of either kind."""
        return self.answered_keep + self.answered_release

    @property
    def response_rate(self) -> float | None:
        """Answered / sent, or None before anything was sent."""
        return self.answered / self.sent if self.sent else None

    @property
    def regret_rate(self) -> float | None:
        """Restore requests / released answers, or None without releases."""
        return self.restore_requests / self.answered_release if self.answered_release else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, derived rates included."""
        return {
            **asdict(self),
            "answered": self.answered,
            "response_rate": self.response_rate,
            "regret_rate": self.regret_rate,
        }


def campaign_report(engine: Engine, *, policy: str | None = None) -> list[CampaignStats]:
    """Per-policy campaign numbers, by policy name; ``policy`` keeps one (case-insensitive)."""
    name_filter = [] if policy is None else [func.lower(policies.c.name) == policy.lower()]
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    waits: dict[str, list[float]] = defaultdict(list)
    asking = (CaseState.ASKED.value, CaseState.REMINDED.value)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                policies.c.name,
                cases.c.state,
                cases.c.asked_at,
                cases.c.answered_at,
                cases.c.reminders_sent,
            )
            .join(policies, policies.c.id == cases.c.policy_id)
            .where(*name_filter)
        )
        for name, state, asked_at, answered_at, reminders in rows:
            c = counts[name]
            c["_cases"] += 1
            if asked_at is not None:
                c["sent"] += 1
                if reminders:
                    c["reminded"] += 1
                if state in asking:
                    c["awaiting"] += 1
                if answered_at is not None:
                    waits[name].append((int(answered_at) - int(asked_at)) / 3600)
            if state == CaseState.COULD_NOT_ASK.value:
                c["could_not_ask"] += 1
        events = conn.execute(
            select(policies.c.name, case_events.c.cause, case_events.c.to_state, func.count())
            .join(cases, cases.c.id == case_events.c.case_id)
            .join(policies, policies.c.id == cases.c.policy_id)
            .where(
                case_events.c.cause.in_(["answered", "no_response", RESTORE_REQUESTED]),
                *name_filter,
            )
            .group_by(policies.c.name, case_events.c.cause, case_events.c.to_state)
        )
        for name, cause, to_state, n in events:
            c = counts[name]
            if cause == "answered":
                keep = to_state == CaseState.ANSWERED_KEEP.value
                c["answered_keep" if keep else "answered_release"] += int(n)
            elif cause == "no_response":
                c["no_response"] += int(n)
            else:
                c["restore_requests"] += int(n)
    out: list[CampaignStats] = []
    for name in sorted(counts, key=str.lower):
        c = counts[name]
        found = waits.get(name)
        out.append(
            CampaignStats(
                policy=name,
                sent=c["sent"],
                reminded=c["reminded"],
                answered_keep=c["answered_keep"],
                answered_release=c["answered_release"],
                no_response=c["no_response"],
                could_not_ask=c["could_not_ask"],
                awaiting=c["awaiting"],
                restore_requests=c["restore_requests"],
                median_hours_to_answer=round(statistics.median(found), 1) if found else None,
            )
        )
    return out
