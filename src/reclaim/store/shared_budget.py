"""One Graph rate budget for every worker: the token buckets live in the database.

Graph throttles per app + tenant, whatever number of processes or machines send the
requests. With several workers, each with its own in-process
:class:`~reclaim.connectors.graph.budget.TokenBucketBudget`, the app would send N times
the sustainable rate and bounce off 429s. :class:`SharedBudget` keeps the two buckets
(resource units, writes) and the "everyone wait" mark of a 429 in one row of the
``controls`` table, and books each reservation in one short transaction:

1. an ``UPDATE`` of the row first — it takes the row lock on PostgreSQL and the write
   lock on SQLite, so two bookings never read the same level;
2. read the levels, refill them for the time passed, take the cost (going into debt
   if need be, exactly as the in-process buckets do), write them back.

The wait returned is the debt divided by the refill rate, so concurrent senders in
different processes get successive slots. Time is wall-clock (``time.time``) because
it is compared across machines; keep their clocks in sync (NTP), as Graph's
Retry-After already assumes.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite

from reclaim.connectors.graph.budget import BudgetLimits, RequestCost
from reclaim.store.tables import controls

PREFIX = "budget:"


def _refill(state: dict[str, float], lim: BudgetLimits, now: float) -> None:
    """Top both buckets up for the time since the last booking (capped when full)."""
    passed = max(0.0, now - float(state.get("t", now)))
    ru = float(state.get("ru", lim.resource_units))
    writes = float(state.get("w", lim.writes))
    state["ru"] = min(
        lim.resource_units, ru + passed * lim.resource_units / lim.resource_unit_window
    )
    state["w"] = min(lim.writes, writes + passed * lim.writes / lim.write_window)
    state["t"] = max(now, float(state.get("t", now)))


def budget_key(name: str) -> str:
    """The ``controls`` key of a budget: the name itself when it fits in the 40-character
    key, else a digest of it (``graph:<tenant id>:<client id>`` does not fit, and cutting
    it short would give two apps of one tenant the same bucket)."""
    if len(PREFIX + name) <= 40:
        return PREFIX + name
    return PREFIX + hashlib.sha256(name.encode()).hexdigest()[: 40 - len(PREFIX)]


class SharedBudget:
    """A :class:`~reclaim.connectors.graph.budget.RateBudget` kept in the store."""

    def __init__(
        self,
        engine: Engine,
        name: str,
        limits: BudgetLimits,
        *,
        clock: Callable[[], float] = time.time,
        owner: str = "reclaim",
    ) -> None:
        self.engine = engine
        self.key = budget_key(name)
        self.limits = limits
        self.clock = clock
        self.owner = owner
        self._ensure_row()

    def _ensure_row(self) -> None:
        # Full buckets to begin with, as Graph's are after a quiet spell.
        start = {"ru": self.limits.resource_units, "w": self.limits.writes, "t": self.clock()}
        with self.engine.begin() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            # DO NOTHING: a second process starting must not refill a bucket in use.
            conn.execute(
                dialect.insert(controls)
                .values(
                    key=self.key,
                    value=json.dumps(start),
                    updated=int(start["t"]),
                    updated_by=self.owner,
                )
                .on_conflict_do_nothing(index_elements=["key"])
            )

    def _book(self, change: Callable[[dict[str, float], float], float]) -> float:
        with self.engine.begin() as conn:
            # Lock first (see the module docstring), then read what the lock protects.
            conn.execute(
                update(controls).where(controls.c.key == self.key).values(value=controls.c.value)
            )
            raw = conn.execute(select(controls.c.value).where(controls.c.key == self.key)).scalar()
            state = json.loads(raw or "{}")
            now = self.clock()
            _refill(state, self.limits, now)
            wait = change(state, now)
            conn.execute(
                update(controls)
                .where(controls.c.key == self.key)
                .values(value=json.dumps(state), updated=int(now), updated_by=self.owner)
            )
        return wait

    def reserve(self, cost: RequestCost) -> float:
        """Book ``cost`` in the shared buckets; seconds to wait before sending."""
        lim = self.limits

        def take(state: dict[str, float], now: float) -> float:
            wait = max(0.0, float(state.get("p", 0.0)) - now)
            if cost.resource_units:
                state["ru"] -= cost.resource_units
                if state["ru"] < 0:
                    wait = max(wait, -state["ru"] / (lim.resource_units / lim.resource_unit_window))
            if cost.writes:
                state["w"] -= cost.writes
                if state["w"] < 0:
                    wait = max(wait, -state["w"] / (lim.writes / lim.write_window))
            return wait

        if not (cost.resource_units or cost.writes):
            return 0.0
        return self._book(take)

    def throttled(self, retry_after: float | None) -> None:
        """Graph said 429 to one worker: every worker waits out its Retry-After."""
        if retry_after is None or retry_after <= 0:
            return

        def pause(state: dict[str, float], now: float) -> float:
            state["p"] = max(float(state.get("p", 0.0)), now + retry_after)
            return 0.0

        self._book(pause)
