"""Scheduled cycles: each policy's cron ``schedule``, one cycle per tick.

A tick is the latest cron time at or before now, in the configured time zone. Any
number of workers may look at the same tick; the ``leases`` table lets exactly one of
them run it (``store.leases.claim_tick``). Missed ticks (every worker was down) are not
caught up one by one: the latest one runs once, which is what a cycle needs.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from zoneinfo import ZoneInfo

from croniter import croniter
from sqlalchemy import Engine

from reclaim.config import Settings
from reclaim.domain.policy import Policy
from reclaim.services.cycle import CycleOutcome, run_cycle
from reclaim.store.leases import claim_tick, finish_tick

log = logging.getLogger(__name__)

CYCLE_LEASE_SECONDS = 15 * 60  # a cycle that takes longer is presumed dead and re-run


def latest_tick(schedule: str, now: dt.datetime, *, tz: str = "UTC") -> dt.datetime:
    """The latest time at or before ``now`` matching the cron ``schedule`` (in ``tz``)."""
    local = now.astimezone(ZoneInfo(tz)) + dt.timedelta(seconds=1)  # a tick at now counts
    previous: dt.datetime = croniter(schedule, local).get_prev(dt.datetime)
    return previous.astimezone(dt.UTC)


def next_tick(schedule: str, now: dt.datetime, *, tz: str = "UTC") -> dt.datetime:
    """The first time after ``now`` matching the cron ``schedule`` (in ``tz``)."""
    local = now.astimezone(ZoneInfo(tz))
    following: dt.datetime = croniter(schedule, local).get_next(dt.datetime)
    return following.astimezone(dt.UTC)


def lease_name(policy: Policy) -> str:
    """The lease that guards a policy's scheduled cycles."""
    return f"cycle:{policy.name}"


CycleFn = Callable[..., CycleOutcome]


def run_due_cycles(
    engine: Engine,
    *,
    settings: Settings,
    now: dt.datetime,
    owner: str,
    cycle: CycleFn = run_cycle,
) -> list[CycleOutcome]:
    """Run each enabled policy's latest tick that no worker has run yet."""
    done = []
    now_s = int(now.timestamp())
    for policy in settings.policies:
        if not policy.enabled:
            continue
        tick = int(latest_tick(policy.schedule, now, tz=settings.timezone).timestamp())
        with engine.begin() as conn:
            won = claim_tick(
                conn,
                lease_name(policy),
                tick=tick,
                owner=owner,
                now=now_s,
                ttl=CYCLE_LEASE_SECONDS,
            )
        if not won:
            continue
        try:
            outcome = cycle(engine, settings=settings, policy=policy, now=now)
        except Exception:
            # The lease runs out and another worker (or this one) tries the tick again.
            log.exception("cycle of %s for tick %s failed", policy.name, tick)
            continue
        with engine.begin() as conn:
            finish_tick(conn, lease_name(policy), tick=tick, owner=owner)
        done.append(outcome)
    return done
