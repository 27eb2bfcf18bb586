"""The demo's people and who holds which license, generated from a seed.

Each license a person holds follows one *persona*, so the demo meets every case Reclaim
must tell apart: steady users, people who stopped, people who never started, light users
under an underuse floor, new joiners still in their grace period, quarterly (seasonal)
users, and people on leave whose devices report nothing at all. Most people are synced
from on-premises AD (hybrid identities with a SID); a few are guests whose UPNs carry
``#EXT#``. The same seed and size always give the same organization.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass, field

from reclaim.demo.catalog import DEPARTMENTS, DOMAIN, FIRST, LAST, PARTNER_DOMAINS, PRODUCTS

# Persona weights for a license holder (seasonal users are drawn separately per product).
PERSONAS = (("steady", 62), ("stopped", 12), ("never", 6), ("light", 10), ("new", 5))
GUEST_SHARE = 0.03
CLOUD_ONLY_SHARE = 0.08  # members not synced from on-prem AD (hired straight into the cloud)
ON_LEAVE_SHARE = 0.03
SID_DOMAIN = "S-1-5-21-3623811015-3361044348-30300820"


@dataclass(frozen=True)
class Person:
    """One user of the tenant."""

    upn: str
    object_id: str
    display_name: str
    department: str
    guest: bool = False
    synced: bool = False  # a hybrid identity, mastered in on-prem AD
    sid: str | None = None
    sam: str | None = None
    on_leave_from: dt.date | None = None  # nothing is reported about them from that day


@dataclass(frozen=True)
class Holding:
    """One person's license of one product: how they use it and when it was granted."""

    upn: str
    persona: str
    granted: dt.date
    direct: bool = False  # the SKU is also assigned to them directly (not by the group)


@dataclass
class DemoOrg:
    """The generated organization: people, and each product's holders."""

    seed: int
    today: dt.date
    people: list[Person]
    holdings: dict[str, list[Holding]] = field(default_factory=dict)  # product name → holders


def _object_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _weighted(rng: random.Random, options: tuple[tuple[str, float], ...]) -> str:
    names = [n for n, _ in options]
    weights = [w for _, w in options]
    return rng.choices(names, weights=weights)[0]


def _people(rng: random.Random, count: int, today: dt.date) -> list[Person]:
    out: list[Person] = []
    taken: set[str] = set()
    while len(out) < count:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        alias = f"{first}.{last}"
        n = 2
        base = alias
        while alias in taken:
            alias = f"{base}{n}"
            n += 1
        taken.add(alias)
        name = f"{first.title()} {last.title()}"
        department = _weighted(rng, DEPARTMENTS)
        if rng.random() < GUEST_SHARE:
            partner = rng.choice(PARTNER_DOMAINS)
            upn = f"{alias}_{partner}#EXT#@{DOMAIN}"
            out.append(Person(upn, _object_id(rng), f"{name} ({partner})", "Partners", guest=True))
            continue
        synced = rng.random() >= CLOUD_ONLY_SHARE
        rid = 1100 + len(out)
        leave = None
        if rng.random() < ON_LEAVE_SHARE:
            leave = today - dt.timedelta(days=rng.randint(12, 25))
        out.append(
            Person(
                f"{alias}@{DOMAIN}",
                _object_id(rng),
                name,
                department,
                synced=synced,
                sid=f"{SID_DOMAIN}-{rid}" if synced else None,
                sam=alias[:20] if synced else None,
                on_leave_from=leave,
            )
        )
    return out


def _holding(
    rng: random.Random, upn: str, today: dt.date, *, seasonal: float, direct: float
) -> Holding:
    persona = "seasonal" if rng.random() < seasonal else _weighted(rng, PERSONAS)
    if persona == "new":
        granted = today - dt.timedelta(days=rng.randint(1, 10))
    else:
        granted = today - dt.timedelta(days=rng.randint(400, 1200))
    return Holding(upn, persona, granted, direct=rng.random() < direct)


def generate_org(*, users: int, today: dt.date, seed: int = 42) -> DemoOrg:
    """People and license holders, with a persona per (product, holder)."""
    rng = random.Random(seed)
    people = _people(rng, users, today)
    org = DemoOrg(seed=seed, today=today, people=people)
    for product in PRODUCTS:
        if product.dynamic_department is not None:
            # The rule decides who is in; the demo lists them as Entra would.
            chosen = [p.upn for p in people if p.department == product.dynamic_department]
        else:
            chosen = rng.sample([p.upn for p in people], max(1, round(users * product.share)))
        org.holdings[product.name] = sorted(
            (
                _holding(
                    rng,
                    upn,
                    today,
                    seasonal=product.seasonal_share,
                    direct=product.direct_share,
                )
                for upn in chosen
            ),
            key=lambda h: h.upn,
        )
    return org
