"""The savings report and the pages' other slow aggregates, computed again only when the
data under them changed, in the background when a page cannot wait.

``services.report.savings_report`` evaluates every member of every policy (seconds at
100,000 members), and the funnel and monthly figures scan every case: too slow for
each dashboard view, and wasteful when nothing changed. This cache keeps the last
result of each computation with a fingerprint of its inputs, read in a few cheap
queries:

- the day (the report is "as of today");
- the newest case and the newest case event (every transition appends an event, and
  both are primary-key maxima: an index lookup, not a scan);
- the watermarks in ``summary_state``: the usage summary's, and each policy's
  count of member changes (bumped by every import or sync that changes who is in
  its group, ``services.members_import``; reading the memberships themselves cost
  ~0.2 s a page view at 1.5 million); and the policies' last change;
- for some results, more (``extra``: the kill switch, approvals, the hour).

**Waiting.** :meth:`SavingsCache.lookup` starts a computation whose fingerprint moved
in a background thread (one at a time per result) and waits for it up to ``wait``
seconds. ``wait=None`` always waits, so the API and ``reclaim report`` get the exact
numbers for the data; a page passes its render budget and, when the computation takes
longer, shows the last result (or nothing yet) marked as being recomputed, and the
next view picks up the new one. Results are always those ``reclaim report`` prints
for the data they were computed on.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from reclaim.config import Settings
from reclaim.services.report import savings_report
from reclaim.store.tables import case_events, cases, policies, summary_state

log = logging.getLogger("reclaim.web.cache")
SAVINGS = "savings"


def fingerprint(conn: Connection, *, today: dt.date) -> tuple[Any, ...]:
    """What the savings report depends on, in a handful of aggregates."""
    c = (
        conn.execute(select(func.max(cases.c.id))).scalar(),
        conn.execute(select(func.max(case_events.c.id))).scalar(),
    )
    # Members leaving through a removal (store.cases.left_group) come with a case event.
    s = conn.execute(select(summary_state.c.name, summary_state.c.events)).all()
    p = conn.execute(select(func.max(policies.c.updated), func.count())).one()
    return (today.isoformat(), tuple(c), tuple(sorted(map(tuple, s))), tuple(p))


@dataclass(frozen=True)
class Cached:
    """A result as a page gets it: ``value`` None when nothing was computed yet;
    ``fresh`` False while a computation for the current data is still running."""

    value: Any
    fresh: bool
    computed_at: dt.datetime | None


class _Run:
    """One computation in its thread."""

    def __init__(self, key: tuple[Any, ...]) -> None:
        self.key = key
        self.done = threading.Event()
        self.error: BaseException | None = None


@dataclass
class _Slot:
    key: tuple[Any, ...] | None = None
    value: Any = None
    computed_at: dt.datetime | None = None
    running: _Run | None = None


@dataclass
class SavingsCache:
    """The app's cached results; thread-safe (pages render in a thread pool)."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _slots: dict[str, _Slot] = field(default_factory=dict)

    @staticmethod
    def fingerprint(engine: Engine, now: dt.datetime) -> tuple[Any, ...]:
        """The data's fingerprint now (read it once per request, pass it as ``base``)."""
        with engine.connect() as conn:
            return fingerprint(conn, today=now.date())

    @property
    def computed_at(self) -> dt.datetime | None:
        """When the cached savings report was computed (its ``now``)."""
        slot = self._slots.get(SAVINGS)
        return None if slot is None else slot.computed_at

    def lookup(
        self,
        engine: Engine,
        name: str,
        compute: Callable[[], Any],
        *,
        now: dt.datetime,
        extra: tuple[Any, ...] = (),
        wait: float | None = None,
        rekey: bool = False,
        base: tuple[Any, ...] | None = None,
    ) -> Cached:
        """``compute()``'s result for the current data, waiting up to ``wait`` seconds
        (None: as long as it takes) for a computation; else the last result, not fresh.

        ``rekey``: fingerprint again after computing, for a computation that brings
        the data up to date itself (the savings report refreshes the usage summary).
        ``base``: the fingerprint, when the caller read it already for this request.
        """

        def key_now() -> tuple[Any, ...]:
            return (*self.fingerprint(engine, now), *extra)

        key = key_now() if base is None else (*base, *extra)
        for _ in range(3):  # a run for older data may finish first: then start ours
            with self._lock:
                slot = self._slots.setdefault(name, _Slot())
                if slot.key == key:
                    return Cached(slot.value, True, slot.computed_at)
                if slot.running is None:
                    slot.running = self._start(name, slot, key, compute, now, key_now, rekey)
                run = slot.running
            if not run.done.wait(wait):
                with self._lock:
                    return Cached(slot.value, False, slot.computed_at)
            if run.error is not None and run.key == key:
                raise run.error
        with self._lock:  # the data kept moving while we waited: show the newest result
            return Cached(slot.value, slot.key == key, slot.computed_at)

    def _start(
        self,
        name: str,
        slot: _Slot,
        key: tuple[Any, ...],
        compute: Callable[[], Any],
        now: dt.datetime,
        key_now: Callable[[], tuple[Any, ...]],
        rekey: bool,
    ) -> _Run:
        run = _Run(key)

        def work() -> None:
            try:
                value = compute()
                done_key = key_now() if rekey else key
            except BaseException as exc:  # handed to a waiting request; logged for the rest
                run.error = exc
                log.exception("computing %s for the pages failed", name)
                with self._lock:
                    slot.running = None
            else:
                with self._lock:
                    slot.key, slot.value, slot.computed_at = done_key, value, now
                    slot.running = None
            finally:
                run.done.set()

        threading.Thread(target=work, name=f"reclaim-cache-{name}", daemon=True).start()
        return run

    def derived(
        self,
        engine: Engine,
        name: str,
        compute: Callable[[], Any],
        *,
        now: dt.datetime,
        extra: tuple[Any, ...] = (),
    ) -> Any:
        """``compute()``, or its last result when the data is unchanged since (waits)."""
        return self.lookup(engine, name, compute, now=now, extra=extra).value

    def savings(
        self,
        engine: Engine,
        settings: Settings,
        *,
        now: dt.datetime,
        wait: float | None = None,
        base: tuple[Any, ...] | None = None,
    ) -> Cached:
        """The savings report as of ``now`` (see :meth:`lookup` for ``wait``, ``base``)."""
        return self.lookup(
            engine,
            SAVINGS,
            lambda: savings_report(engine, settings=settings, now=now),
            now=now,
            wait=wait,
            rekey=True,
            base=base,
        )

    def get(self, engine: Engine, settings: Settings, *, now: dt.datetime) -> dict[str, Any]:
        """The savings report as of ``now``, from the cache when the data is unchanged."""
        report: dict[str, Any] = self.savings(engine, settings, now=now).value
        return report


def within(wait: float | None, *lookups: Callable[[float | None], Cached]) -> list[Cached]:
    """Run several lookups (each called with its ``wait``) under one budget: start them
    all first, so their computations overlap, then wait for each in what is left."""
    if wait is None:
        return [lookup(None) for lookup in lookups]
    deadline = time.monotonic() + wait
    started = [lookup(0) for lookup in lookups]
    return [
        found if found.fresh else lookup(max(0.0, deadline - time.monotonic()))
        for lookup, found in zip(lookups, started, strict=True)
    ]
