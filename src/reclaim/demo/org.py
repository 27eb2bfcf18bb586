"""A generated sample organization with realistic usage, for the demo and for tests.

Each member of each license group follows one persona, so the demo shows every
case Reclaim must tell apart: steady users, people who stopped, people who never
started, light users under the floor, new joiners, and people on leave whose devices
report nothing at all. Everyone else's mail and chat use is what tells Reclaim they
were observed. The generator is seeded: the same arguments give the same files.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

FIRST = [
    "ada",
    "alan",
    "anna",
    "ben",
    "carla",
    "dan",
    "eva",
    "finn",
    "grace",
    "hugo",
    "ines",
    "jon",
    "kara",
    "liam",
    "mia",
    "nils",
    "olga",
    "paul",
    "quinn",
    "rosa",
    "sam",
    "tara",
    "uma",
    "vic",
    "wen",
    "xavi",
    "yara",
    "zoe",
]
LAST = [
    "adams",
    "baker",
    "chen",
    "diaz",
    "evans",
    "fox",
    "garcia",
    "hill",
    "ito",
    "jones",
    "khan",
    "lee",
    "moreau",
    "novak",
    "okafor",
    "patel",
    "quist",
    "rossi",
    "silva",
    "tanaka",
    "ueda",
    "varga",
    "weber",
    "young",
    "zhou",
]

DOMAIN = "corp.example.test"
BACKGROUND_APPS = ("OUTLOOK.EXE", "Teams")  # everyday apps: they show a person is observed

PERSONAS = (
    "steady",
    "steady",
    "steady",
    "steady",
    "stopped",
    "stopped",
    "never",
    "light",
    "new",
    "on_leave",
)


@dataclass(frozen=True)
class DemoPolicy:
    """A licensed product in the demo and which apps its usage comes from."""

    name: str
    apps: tuple[str, ...]
    unused_days: int
    seat_cost: str
    share: float  # share of people holding the license
    underuse_minutes: int | None = None


DEMO_POLICIES = (
    DemoPolicy("Visio", ("VISIO.EXE", "Microsoft Visio"), 30, "15.00", 0.30),
    DemoPolicy("Acrobat Pro", ("Acrobat.exe", "Adobe Acrobat"), 30, "19.99", 0.40, 120),
    DemoPolicy("Tableau Creator", ("Tableau", "tableau.exe"), 60, "75.00", 0.15),
    DemoPolicy("Miro", ("Miro",), 60, "10.00", 0.25),
)


@dataclass
class DemoOrg:
    """The generated organization: people, who holds what, and the persona of each."""

    users: list[str]
    members: dict[str, dict[str, tuple[str, dt.date]]] = field(default_factory=dict)
    # policy name → user → (persona, grant date)


def generate_org(*, users: int, today: dt.date, seed: int = 42) -> DemoOrg:
    """People and license holders, with a persona per (policy, holder)."""
    rng = random.Random(seed)
    names: list[str] = []
    taken: set[str] = set()
    while len(names) < users:
        upn = f"{rng.choice(FIRST)}.{rng.choice(LAST)}"
        n = 2
        base = upn
        while upn in taken:
            upn = f"{base}{n}"
            n += 1
        taken.add(upn)
        names.append(f"{upn}@{DOMAIN}")
    org = DemoOrg(users=names)
    for policy in DEMO_POLICIES:
        holders = rng.sample(names, max(1, int(users * policy.share)))
        group: dict[str, tuple[str, dt.date]] = {}
        for upn in holders:
            persona = rng.choice(PERSONAS)
            if persona == "new":
                granted = today - dt.timedelta(days=rng.randint(1, 10))
            else:
                granted = today - dt.timedelta(days=rng.randint(120, 900))
            group[upn] = (persona, granted)
        org.members[policy.name] = dict(sorted(group.items()))
    return org


def _working_days(start: dt.date, end: dt.date) -> Iterator[dt.date]:
    d = start
    while d <= end:
        if d.weekday() < 5:
            yield d
        d += dt.timedelta(days=1)


def usage_rows(
    org: DemoOrg, *, today: dt.date, days: int = 90, seed: int = 42
) -> Iterator[tuple[str, str, str, int, str]]:
    """(user, app, timestamp, seconds, device) events for the last ``days`` days."""
    rng = random.Random(seed + 1)
    start = today - dt.timedelta(days=days - 1)
    on_leave = {u for grp in org.members.values() for u, (p, _) in grp.items() if p == "on_leave"}
    leave_from = today - dt.timedelta(days=rng.randint(12, 20))
    for upn in org.users:
        device = "PC-" + upn.split("@")[0].replace(".", "-").upper()[:12]
        for day in _working_days(start, today - dt.timedelta(days=1)):
            if upn in on_leave and day >= leave_from:
                continue  # their laptop is in a drawer: no data at all, not "no use"
            for app in BACKGROUND_APPS:
                yield (upn, app, _at(day, rng), rng.randint(600, 7200), device)
    for policy in DEMO_POLICIES:
        for upn, (persona, granted) in org.members[policy.name].items():
            device = "PC-" + upn.split("@")[0].replace(".", "-").upper()[:12]
            first = max(start, granted)
            if persona == "never":
                continue
            if persona == "stopped":
                last = today - dt.timedelta(days=rng.randint(policy.unused_days + 5, days - 5))
            elif persona == "on_leave":
                last = leave_from - dt.timedelta(days=1)
            else:
                last = today - dt.timedelta(days=1)
            if upn in on_leave:  # a person on leave uses nothing, whatever the product
                last = min(last, leave_from - dt.timedelta(days=1))
            chance = 0.04 if persona == "light" else 0.6
            for day in _working_days(first, last):
                if rng.random() < chance:
                    app = rng.choice(policy.apps)
                    secs = rng.randint(60, 600) if persona == "light" else rng.randint(600, 5400)
                    yield (upn, app, _at(day, rng), secs, device)


def _at(day: dt.date, rng: random.Random) -> str:
    return f"{day.isoformat()}T{rng.randint(7, 18):02d}:{rng.randint(0, 59):02d}:00Z"


def write_demo_files(
    directory: Path, *, users: int, today: dt.date, seed: int = 42
) -> tuple[DemoOrg, Path, dict[str, Path]]:
    """Write the usage CSV and one members CSV per policy; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    org = generate_org(users=users, today=today, seed=seed)
    usage = directory / "demo-usage.csv"
    with usage.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(("user", "app", "timestamp", "seconds", "device"))
        out.writerows(usage_rows(org, today=today, seed=seed))
    member_files: dict[str, Path] = {}
    for name, group in org.members.items():
        path = directory / f"members-{name.lower().replace(' ', '-')}.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh)
            out.writerow(("user", "granted_at"))
            out.writerows((u, g.isoformat()) for u, (_, g) in group.items())
        member_files[name] = path
    return org, usage, member_files


def demo_config_yaml(data_dir: Path) -> str:
    """The demo's reclaim.yaml: one policy per demo product, manual workflow."""
    lines = [
        "# Generated by 'reclaim demo'. Every key is explained in the README.",
        f"data_dir: {data_dir}",
        "policies:",
    ]
    for p in DEMO_POLICIES:
        apps = ", ".join(f'"{a}"' for a in p.apps)
        lines += [
            f"  - name: {p.name}",
            f"    apps: [{apps}]",
            f'    group: {{name: "{p.name} users"}}',
            "    workflow: manual",
            f"    seat_cost: {{amount: {p.seat_cost}, currency: USD}}",
            f"    unused_days: {p.unused_days}",
        ]
        if p.underuse_minutes:
            lines.append(f"    underuse: {{min_minutes: {p.underuse_minutes}, window_days: 90}}")
    return "\n".join(lines) + "\n"
