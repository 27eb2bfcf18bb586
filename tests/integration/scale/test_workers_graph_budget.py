"""Three ``reclaim worker`` processes on PostgreSQL against a Graph server with strict
limits book one budget in the store (``SharedBudget``), so the server refuses nothing.

The workers ask (membership and usage re-checked over Graph: reads only, so the
10-second read bucket is what binds, not the 150-second write bucket). The run sends
well over the server's bucket, and each worker alone could send faster than the
bucket refills: with private budgets (each the whole allowance) the three together
bounce off 429s — checked by hand with the shared budget switched off (13 refused).
Three workers on one SQLite file are not a supported shape (SQLite installs run one
process), so there is no SQLite variant.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reclaim.connectors.graph.budget import RESOURCE_UNITS_PER_10S
from reclaim.domain.case import CaseState
from reclaim.store.tables import cases
from reclaim.testing.graph import GraphServer

from .world import build_world, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]  # three worker processes, ~30 s
CANDIDATES = 150
SCALE = 0.03  # Graph's limits x 0.05 on the server, and in the workers' config


def test_three_workers_stay_under_graph_limits_together(
    graph_server: GraphServer, pg_url: str, tmp_path: Path
) -> None:
    world = build_world(
        graph_server,
        pg_url,
        tmp_path,
        {"E3": CANDIDATES},
        asking=("E3",),
        entra_extra=f"  rate_limit_scale: {SCALE}\n",
    )
    graph_server.throttle.configure(scale=SCALE)  # buckets restart full, as the workers'
    started = time.monotonic()
    try:
        for n in range(3):
            world.start_worker(f"worker{n}")
        asked = cases.c.state == CaseState.ASKED.value
        done = wait_for(lambda: world.count_cases(asked) == CANDIDATES, 180, step=0.5)
        took = time.monotonic() - started
    finally:
        world.stop_all()
        world.ctx.engine.dispose()
    assert done, world.log_tail("worker0")
    log = graph_server.requests
    units = sum(r.resource_units for r in log.all() if r.ok)
    capacity = RESOURCE_UNITS_PER_10S["M"] * SCALE  # the tenant has 301 users: size M
    assert units > 1.3 * capacity, f"only {units} resource units: the limit was never tested"
    assert log.count(status=429) == 0, f"{log.count(status=429)} requests refused with 429"
    assert log.count("DELETE") == 0
    print(f"{units} resource units in {took:.1f}s, no 429")
    # Paced, not lucky: what went over the bucket took at least its refill time.
    assert took >= (units - capacity) / (capacity / 10) * 0.9, (units, took)
