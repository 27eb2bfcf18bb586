"""A generated organization whose every verdict is known in advance.

Each person follows one persona over 27 months of history; the persona fixes the
verdict Reclaim must reach as of :data:`AS_OF`. Everyone but the "no data" personas
is seen on most working days through an everyday app (OUTLOOK.EXE): that is what
makes their silence on a licensed app mean something. Seeded: the same org every run.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

AS_OF = dt.date(2026, 11, 10)
HISTORY_START = dt.date(2024, 8, 1)
LONG_AGO = dt.date(2024, 6, 3)  # the grant date of everyone who is not new
DOMAIN = "corp.test"
VIP = f"ceo@{DOMAIN}"


def policies_yaml() -> str:
    """The three policies of the organization."""
    return f"""
  - name: Visio
    apps: [VISIO.EXE, Microsoft Visio]
    group: {{name: Visio users}}
    workflow: manual
    seat_cost: {{amount: 15}}
    unused_days: 30
    grace_days: 14
    exclude: {{users: [{VIP}], groups: [Executives]}}
  - name: Acrobat Pro
    apps: [Acrobat.exe]
    group: {{name: Acrobat users}}
    workflow: manual
    seat_cost: {{amount: 20}}
    unused_days: 30
    underuse: {{min_minutes: 120, window_days: 90}}
    exclude: {{users: [{VIP}]}}
  - name: Exec Suite
    apps: [EXEC.EXE]
    group: {{name: Executives}}
    workflow: manual
    seat_cost: {{amount: 50}}
    unused_days: 60
"""


def _workdays(start: dt.date, end: dt.date) -> list[dt.date]:
    out, d = [], start
    while d <= end:
        if d.weekday() < 5:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def _month_end_days(
    n_last: int, n_first: int, months: tuple[int, ...], until: dt.date
) -> list[dt.date]:
    """The last ``n_last`` working days of the given months and the first ``n_first``
    working days of the following month, from HISTORY_START to ``until``."""
    days: list[dt.date] = []
    y, m = HISTORY_START.year, HISTORY_START.month
    while dt.date(y, m, 1) <= until:
        if m in months:
            nxt = dt.date(y + (m == 12), m % 12 + 1, 1)
            work = _workdays(dt.date(y, m, 1), nxt - dt.timedelta(days=1))
            days += work[-n_last:]
            days += _workdays(nxt, nxt + dt.timedelta(days=10))[:n_first]
        y, m = y + (m == 12), m % 12 + 1
    return [d for d in days if HISTORY_START <= d <= until]


@dataclass
class TruthOrg:
    """People, group members, events and the verdict each member must get."""

    members: dict[str, dict[str, dt.date]] = field(default_factory=dict)  # policy → user → grant
    events: list[tuple[str, str, dt.date, int | None]] = field(default_factory=list)
    truth: dict[tuple[str, str], str] = field(default_factory=dict)  # (policy, user) → verdict
    personas: dict[str, str] = field(default_factory=dict)  # user → persona

    def add(
        self,
        persona: str,
        n: int,
        *,
        policy: str,
        verdict: str,
        granted: dt.date = LONG_AGO,
        seen_from: dt.date | None = HISTORY_START,
        seen_until: dt.date | None = None,
    ) -> Iterator[str]:
        """Add ``n`` people of one persona to ``policy``; yields each UPN to add usage."""
        for i in range(n):
            user = f"{persona}{i}@{DOMAIN}"
            self.personas[user] = persona
            self.members.setdefault(policy, {})[user] = granted
            self.truth[(policy, user)] = verdict
            if seen_from is not None:
                until = seen_until or AS_OF - dt.timedelta(days=1)
                self.events += [(user, "OUTLOOK.EXE", d, 900) for d in _workdays(seen_from, until)]
            yield user

    def use(self, user: str, app: str, days: list[dt.date], seconds: int | None = 1800) -> None:
        """``user`` used ``app`` on each of ``days``."""
        self.events += [(user, app, d, seconds) for d in days]


def build(seed: int = 5) -> TruthOrg:
    """The organization (see the module docstring)."""
    rng = random.Random(seed)
    org = TruthOrg()
    yesterday = AS_OF - dt.timedelta(days=1)

    def ago(days: int) -> dt.date:
        return AS_OF - dt.timedelta(days=days)

    # -- Visio: unused_days 30, no floor -------------------------------------------------
    for u in org.add("steady", 4, policy="Visio", verdict="in_use"):
        org.use(u, "VISIO.EXE", _workdays(HISTORY_START, ago(rng.randint(1, 6)))[::2])
    for u in org.add("alias", 2, policy="Visio", verdict="in_use"):
        org.use(u, "Microsoft Visio", _workdays(ago(60), ago(rng.randint(1, 20)))[::3])
    for u in org.add("stopped", 4, policy="Visio", verdict="unused"):
        org.use(u, "VISIO.EXE", _workdays(ago(300), ago(rng.randint(45, 90)))[::4])
    for u in org.add("steadystopper", 2, policy="Visio", verdict="unused"):
        org.use(u, "VISIO.EXE", _workdays(HISTORY_START, ago(rng.randint(55, 70)))[::2])
    for _ in org.add("never", 3, policy="Visio", verdict="unused"):
        pass
    for _ in org.add(
        "newjoiner", 3, policy="Visio", verdict="grace", granted=ago(rng.randint(2, 9))
    ):
        pass
    for u in org.add(
        "onleave", 3, policy="Visio", verdict="no_data", seen_until=ago(rng.randint(12, 20))
    ):
        org.use(u, "VISIO.EXE", _workdays(ago(200), ago(rng.randint(40, 60)))[::3])
    for _ in org.add("staleagent", 2, policy="Visio", verdict="no_data", seen_until=ago(95)):
        pass
    for _ in org.add("neverseen", 2, policy="Visio", verdict="no_data", seen_from=None):
        pass
    for _ in org.add("newdevice", 2, policy="Visio", verdict="no_data", seen_from=ago(20)):
        pass
    for u in org.add("quarterend", 4, policy="Visio", verdict="seasonal"):
        org.use(u, "VISIO.EXE", _month_end_days(3, 2, (3, 6, 9, 12), yesterday))
    for u in org.add("quarterlapsed", 2, policy="Visio", verdict="unused"):
        org.use(u, "VISIO.EXE", _month_end_days(3, 2, (3, 6, 9, 12), dt.date(2026, 7, 15)))
    for u in org.add("yearend", 3, policy="Visio", verdict="seasonal"):
        org.use(
            u,
            "VISIO.EXE",
            [d for d in _workdays(HISTORY_START, yesterday) if d.month == 12 and d.day <= 20],
        )
    # The CEO is on the exclusion list, uses nothing and is seen every day.
    org.members["Visio"][VIP] = LONG_AGO
    org.truth[("Visio", VIP)] = "excluded"
    org.personas[VIP] = "vip"
    org.events += [(VIP, "OUTLOOK.EXE", d, 900) for d in _workdays(HISTORY_START, yesterday)]
    # Executives hold Visio too, and never open it: excluded by their group.
    execs = list(org.add("exec", 3, policy="Exec Suite", verdict="in_use"))
    for u in execs:
        org.use(u, "EXEC.EXE", _workdays(ago(200), ago(rng.randint(1, 10)))[::2])
        org.members["Visio"][u] = LONG_AGO
        org.truth[("Visio", u)] = "excluded"

    # -- Acrobat Pro: unused_days 30, under 120 minutes in 90 days is underused ----------
    for u in org.add("acrosteady", 3, policy="Acrobat Pro", verdict="in_use"):
        org.use(u, "Acrobat.exe", _workdays(ago(120), ago(rng.randint(1, 5))), seconds=1800)
    for u in org.add("acrolight", 3, policy="Acrobat Pro", verdict="underused"):
        org.use(u, "Acrobat.exe", _workdays(ago(80), ago(rng.randint(2, 10)))[::6], seconds=300)
    for u in org.add("acrodateonly", 2, policy="Acrobat Pro", verdict="in_use"):
        org.use(u, "Acrobat.exe", _workdays(ago(40), ago(3))[::5], seconds=None)
    for u in org.add(
        "acronewwindow", 2, policy="Acrobat Pro", verdict="no_data", seen_from=ago(40)
    ):
        org.use(u, "Acrobat.exe", [ago(30), ago(12), ago(5)], seconds=600)
    for u in org.add("acrostopped", 2, policy="Acrobat Pro", verdict="unused"):
        org.use(u, "Acrobat.exe", _workdays(ago(150), ago(rng.randint(40, 70)))[::2], seconds=3600)
    org.members["Acrobat Pro"][VIP] = LONG_AGO
    org.truth[("Acrobat Pro", VIP)] = "excluded"
    return org
