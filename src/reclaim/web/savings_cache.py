"""The savings report and the dashboard's aggregates, computed again only when the
data under them changed.

``services.report.savings_report`` evaluates every member of every policy (about 2 s
for 150,000 members), and the funnel and monthly figures scan every case: too slow
for each dashboard view, and wasteful when nothing changed. This cache keeps the last
results with a fingerprint of their inputs, read in a few cheap queries:

- the day (the report is "as of today");
- the newest case and the newest case event (every transition appends an event, and
  both are primary-key maxima: an index lookup, not a scan);
- memberships (count, latest sighting, latest departure), the usage summary's
  watermark, and the policies' last change.

Results are computed again when the fingerprint moves, so the numbers are always
those ``reclaim report`` prints for the same data.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from reclaim.config import Settings
from reclaim.services.report import savings_report
from reclaim.store.tables import case_events, cases, memberships, policies, summary_state


def fingerprint(conn: Connection, *, today: dt.date) -> tuple[Any, ...]:
    """What the savings report depends on, in a handful of aggregates."""
    c = (
        conn.execute(select(func.max(cases.c.id))).scalar(),
        conn.execute(select(func.max(case_events.c.id))).scalar(),
    )
    m = conn.execute(
        select(func.count(), func.max(memberships.c.last_seen), func.max(memberships.c.left_at))
    ).one()
    s = conn.execute(select(summary_state.c.name, summary_state.c.events)).all()
    p = conn.execute(select(func.max(policies.c.updated), func.count())).one()
    return (today.isoformat(), tuple(c), tuple(m), tuple(sorted(map(tuple, s))), tuple(p))


@dataclass
class SavingsCache:
    """One cached report per app; thread-safe (pages render in a thread pool)."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _key: tuple[Any, ...] | None = None
    _report: dict[str, Any] | None = None
    _derived: dict[str, tuple[tuple[Any, ...], Any]] = field(default_factory=dict)
    computed_at: dt.datetime | None = None

    def derived(
        self, engine: Engine, name: str, compute: Callable[[], Any], *, now: dt.datetime
    ) -> Any:
        """``compute()``, or its last result when the data is unchanged since."""
        with engine.connect() as conn:
            key = fingerprint(conn, today=now.date())
        with self._lock:
            found = self._derived.get(name)
            if found is not None and found[0] == key:
                return found[1]
        value = compute()
        with self._lock:
            self._derived[name] = (key, value)
        return value

    def get(self, engine: Engine, settings: Settings, *, now: dt.datetime) -> dict[str, Any]:
        """The savings report as of ``now``, from the cache when the data is unchanged."""
        with engine.connect() as conn:
            key = fingerprint(conn, today=now.date())
        with self._lock:  # one computation at a time; the others wait and reuse it
            if key != self._key or self._report is None:
                self._report = savings_report(engine, settings=settings, now=now)
                # The report may have refreshed the usage summary: fingerprint after it.
                with engine.connect() as conn:
                    self._key = fingerprint(conn, today=now.date())
                self.computed_at = now
            return self._report
