"""Prometheus metrics: what the store says (read at scrape time) plus this process's
connector counters (:mod:`reclaim.ops.counters`).

The store figures — cases by state, removals, ingested rows, queue lag, the kill
switch — are the same whichever process is scraped, because they come from the shared
database; scrape one web process for them (or all and take ``max``). The connector
counters are per process: sum them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select

from reclaim.store.leases import paused_in_store
from reclaim.store.tables import cases, directory_writes, imports

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Write results that mean the member is out of the group.
REMOVAL_RESULTS = ("done", "already_done")


class StoreCollector(Collector):
    """Reads the store once per scrape (a handful of aggregate queries)."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        """Yield the store metrics (see the module docstring)."""
        now = int(self.clock())
        with self.engine.connect() as conn:
            by_state = conn.execute(
                select(cases.c.state, func.count()).group_by(cases.c.state)
            ).all()
            writes = conn.execute(
                select(directory_writes.c.workflow, directory_writes.c.action, func.count())
                .where(directory_writes.c.result.in_(REMOVAL_RESULTS))
                .group_by(directory_writes.c.workflow, directory_writes.c.action)
            ).all()
            accepted, rejected, files = conn.execute(
                select(
                    func.coalesce(func.sum(imports.c.rows_accepted), 0),
                    func.coalesce(func.sum(imports.c.rows_rejected), 0),
                    func.count(),
                )
            ).one()
            oldest_due = conn.execute(
                select(func.min(cases.c.next_due_at)).where(
                    cases.c.is_open.is_(True), cases.c.next_due_at <= now
                )
            ).scalar()
            paused = paused_in_store(conn)

        states = GaugeMetricFamily("reclaim_cases", "Cases by state.", labels=["state"])
        for state, count in by_state:
            states.add_metric([state], count)
        yield states

        done = CounterMetricFamily(
            "reclaim_directory_writes",
            "Directory writes that took effect (removals and restores), by workflow.",
            labels=["workflow", "action"],
        )
        for workflow, action, count in writes:
            done.add_metric([workflow, action], count)
        yield done

        rows = CounterMetricFamily(
            "reclaim_ingested_rows", "Usage rows imported, by outcome.", labels=["outcome"]
        )
        rows.add_metric(["accepted"], int(accepted))
        rows.add_metric(["rejected"], int(rejected))
        yield rows
        yield GaugeMetricFamily("reclaim_imports", "Usage files imported.", value=files)

        lag = 0 if oldest_due is None else max(0, now - int(oldest_due))
        yield GaugeMetricFamily(
            "reclaim_queue_lag_seconds",
            "How long the oldest due case has waited for a worker (0: none waiting).",
            value=lag,
        )
        yield GaugeMetricFamily(
            "reclaim_paused", "1 while the kill switch is on in the store.", value=int(paused)
        )


def render(engine: Engine, clock: Callable[[], float] = time.time) -> bytes:
    """The exposition text: this process's counters, then the store's figures."""
    store = CollectorRegistry(auto_describe=False)
    store.register(StoreCollector(engine, clock))
    return generate_latest(REGISTRY) + generate_latest(store)
