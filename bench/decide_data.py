"""A generated organization for the decisions benchmark: users, policies, roll-ups.

Shape (documented in bench/README.md, "Decisions"): ``users`` people, each seen on
most working days through an everyday app (that is what "observed" means); ``policies``
licensed products whose groups hold 2 % to 35 % of people. Each member of a group
follows a persona: active (65 %), stopped (15 %), light user under the floor (8 %),
never used it (7 %), new joiner in grace (3 %); 3 % of all people go on leave and stop
reporting anything 10 to 20 days before the end. ``groups="tenant"`` gives the groups
a large tenant's long tail instead (:func:`group_shares`). The roll-ups are generated directly
(no event files): ``usage_daily``, ``usage_latest`` and ``usage_observed`` exactly as the
importer would have written them. Vectorized and seeded.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from reclaim.domain.policy import Policy

EPOCH = dt.date(1970, 1, 1)
PERSONAS = ("active", "stopped", "light", "never", "new")
PERSONA_SHARE = (0.65, 0.15, 0.08, 0.07, 0.05)
BACKGROUND_APP = "teams"


@dataclass
class BenchOrg:
    """Everything the benchmark loads into a store, as frames."""

    end: dt.date  # the day after the last day of data
    upns: list[str]
    app_keys: list[str]  # app id i + 1 is app_keys[i]
    policies: list[Policy]
    memberships: pl.DataFrame  # policy (index), user_id, granted_at
    daily: pl.DataFrame  # day, user_id, app_id, seconds, events, first_seen, last_seen
    observed: pl.DataFrame  # user_id, source_id, month, days_mask, last_day
    latest: pl.DataFrame  # user_id, app_id, first_day, last_day, last_seen


def _policy(k: int, rng: np.random.Generator) -> Policy:
    apps = (f"PRODUCT{k:02d}.EXE",) + ((f"Product {k:02d} Web",) if k % 4 == 0 else ())
    underuse = {"min_minutes": 120, "window_days": 60 if k % 5 == 0 else 90} if k % 2 else None
    return Policy.model_validate(
        {
            "name": f"Product {k:02d}",
            "apps": apps,
            "group": {"name": f"Product {k:02d} users"},
            "workflow": "manual",
            "seat_cost": {"amount": str(round(float(rng.uniform(5, 80)), 2))},
            "unused_days": 60 if k % 3 == 0 else 30,
            "underuse": underuse,
            "exclude": {"users": [f"user{k}@corp.example.test"]},
        }
    )


def group_shares(policies: int, groups: str = "bench") -> list[float]:
    """The share of people in each policy's group.

    ``bench``: 2 % to 35 %, rising along the policies (the decisions benchmark: every
    group sizeable). ``tenant``: a large tenant's long tail over hundreds of products,
    35 % / (k + 1) ** 0.85 for the k-th, at least 0.1 %: a few products held by a third
    of the company, most by under 2 %; about three per person at 200 products.
    """
    if groups == "tenant":
        return [max(0.001, 0.35 / (k + 1) ** 0.85) for k in range(policies)]
    if groups != "bench":
        raise ValueError(f"groups: 'bench' or 'tenant', not {groups!r}")
    return [0.02 + 0.33 * (k / max(1, policies - 1)) ** 1.5 for k in range(policies)]


def generate(
    *,
    users: int = 50_000,
    policies: int = 20,
    days: int = 90,
    seed: int = 11,
    groups: str = "bench",
) -> BenchOrg:
    """The organization; ``end`` is 2026-11-01, so the last day of data is 2026-10-31.
    ``groups`` chooses the group sizes (:func:`group_shares`)."""
    rng = np.random.default_rng(seed)
    end = dt.date(2026, 11, 1)
    first_day = (end - EPOCH).days - days
    day_ids = np.arange(first_day, first_day + days)
    working = ((day_ids + 3) % 7) < 5  # 1970-01-01 was a Thursday: weekday = (n + 3) % 7
    leave = np.where(rng.random(users) < 0.03, days - rng.integers(10, 21, users), days)
    pols = [_policy(k, rng) for k in range(policies)]
    app_keys = [BACKGROUND_APP] + [a.lower() for p in pols for a in p.apps]
    app_id = {k: i + 1 for i, k in enumerate(app_keys)}

    # The everyday app: seen on ~80 % of working days until leave starts.
    seen = (rng.random((users, days)) < 0.8) & working & (np.arange(days) < leave[:, None])
    uu, dd = np.nonzero(seen)
    parts = [(uu, dd, np.full(len(uu), 1), rng.integers(600, 7200, len(uu)))]
    members = []
    for k, (pol, share) in enumerate(zip(pols, group_shares(policies, groups), strict=True)):
        who = rng.choice(users, size=int(users * share), replace=False)
        persona = rng.choice(len(PERSONAS), size=len(who), p=PERSONA_SHARE)
        granted = np.where(
            persona == PERSONAS.index("new"),
            days - rng.integers(1, 14, len(who)),
            days - rng.integers(100, 900, len(who)),
        )
        members.append(
            pl.DataFrame(
                {
                    "policy": np.full(len(who), k),
                    "user_id": who + 1,
                    "granted_at": (first_day + granted) * 86_400,
                }
            )
        )
        rate = np.clip(rng.lognormal(-1.2, 0.6, len(who)), 0.05, 0.9)
        rate[persona == PERSONAS.index("light")] = 0.03
        rate[persona == PERSONAS.index("never")] = 0.0
        stop = np.full(len(who), days)
        stopped = persona == PERSONAS.index("stopped")
        stop[stopped] = rng.integers(0, days - pol.unused_days, stopped.sum())
        start = np.clip(granted, 0, days)
        use = (
            (rng.random((len(who), days)) < rate[:, None])
            & working
            & (np.arange(days) < np.minimum(stop, leave[who])[:, None])
            & (np.arange(days) >= start[:, None])
        )
        mi, md = np.nonzero(use)
        light = persona[mi] == PERSONAS.index("light")
        secs = np.where(light, rng.integers(60, 900, len(mi)), rng.integers(300, 5400, len(mi)))
        aliases = [app_id[a.lower()] for a in pol.apps]
        parts.append((who[mi], md, rng.choice(aliases, size=len(mi)), secs))
    u = np.concatenate([p[0] for p in parts]) + 1
    d = day_ids[np.concatenate([p[1] for p in parts])]
    a = np.concatenate([p[2] for p in parts])
    s = np.concatenate([p[3] for p in parts]).astype(np.int64)
    daily = (
        pl.DataFrame({"day": d, "user_id": u, "app_id": a, "seconds": s})
        .with_columns(
            pl.lit(1, dtype=pl.Int64).alias("events"),
            (pl.col("day").cast(pl.Int64) * 86_400 + 9 * 3600).alias("first_seen"),
            (pl.col("day").cast(pl.Int64) * 86_400 + 9 * 3600).alias("last_seen"),
        )
        .sort("day", "user_id", "app_id")
    )
    return BenchOrg(
        end=end,
        upns=[f"user{i}@corp.example.test" for i in range(users)],
        app_keys=app_keys,
        policies=pols,
        memberships=pl.concat(members),
        daily=daily,
        observed=_observed(daily),
        latest=daily.group_by("user_id", "app_id").agg(
            pl.col("day").min().alias("first_day"),
            pl.col("day").max().alias("last_day"),
            pl.col("last_seen").max(),
        ),
    )


def _observed(daily: pl.DataFrame) -> pl.DataFrame:
    date = pl.col("day").cast(pl.Date)
    return (
        daily.select("user_id", "day")
        .unique()
        .with_columns(
            (date.dt.year().cast(pl.Int64) * 12 + date.dt.month().cast(pl.Int64) - 1).alias(
                "month"
            ),
            # 2 ** (day of month - 1), exact in float64 for days 1..31.
            pl.lit(2.0).pow(date.dt.day().cast(pl.Float64) - 1).cast(pl.Int64).alias("bit"),
        )
        .group_by("user_id", "month")
        .agg(pl.col("bit").sum().alias("days_mask"), pl.col("day").max().alias("last_day"))
        .with_columns(pl.lit(1, dtype=pl.Int64).alias("source_id"))
    )
