"""The Graph budget is shared by every worker process through the database."""

from __future__ import annotations

import multiprocessing as mp
import time

import pytest
from sqlalchemy import Engine

from reclaim.connectors.graph.budget import BudgetLimits, RequestCost
from reclaim.store.engine import make_engine
from reclaim.store.shared_budget import SharedBudget, budget_key

# 10 writes per second, and a bucket that holds 10: small, so the test runs fast.
LIMITS = BudgetLimits(resource_units=1000, writes=10, write_window=1.0)
WRITE = RequestCost(resource_units=1, writes=1)


def _book(url: str, count: int, out: mp.Queue) -> None:
    budget = SharedBudget(make_engine(url), "graph:test", LIMITS, owner=mp.current_process().name)
    slots = []
    for _ in range(count):
        now = time.time()
        slots.append(now + budget.reserve(WRITE))
    out.put(slots)


def test_two_processes_share_one_write_budget(engine: Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    SharedBudget(engine, "graph:test", LIMITS)  # created full, before the workers start
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    workers = [ctx.Process(target=_book, args=(url, 30, out)) for _ in range(2)]
    for w in workers:
        w.start()
    slots = sorted(out.get(timeout=120) + out.get(timeout=120))
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    assert len(slots) == 60
    # Token-bucket bound over the whole run: at most capacity + rate × elapsed sends
    # by any moment (give or take one: the caller reads its clock just before booking).
    # Two private budgets would have allowed twice that.
    start = slots[0]
    for i, at in enumerate(slots):
        allowed = LIMITS.writes + (at - start) * LIMITS.writes / LIMITS.write_window
        assert i + 1 <= allowed + 1, f"send {i + 1} at +{at - start:.2f}s exceeds the budget"
    # ... and the slots are not needlessly late: 60 sends need (60 - 10) / 10 = 5 s.
    assert slots[-1] - start == pytest.approx(5.0, abs=1.0)


def test_a_429_seen_by_one_worker_holds_back_the_others(engine: Engine) -> None:
    clock = [1000.0]
    first = SharedBudget(engine, "graph:t429", LIMITS, clock=lambda: clock[0])
    second = SharedBudget(engine, "graph:t429", LIMITS, clock=lambda: clock[0])
    first.throttled(7.0)
    assert second.reserve(WRITE) == pytest.approx(7.0)
    clock[0] += 7.0
    assert second.reserve(WRITE) == 0.0


def test_a_process_starting_later_does_not_refill_the_bucket(engine: Engine) -> None:
    clock = [50.0]
    busy = SharedBudget(engine, "graph:late", LIMITS, clock=lambda: clock[0])
    waits = [busy.reserve(WRITE) for _ in range(10)]
    assert waits[-1] == 0.0  # the 10th fits in the full bucket
    late = SharedBudget(engine, "graph:late", LIMITS, clock=lambda: clock[0])
    assert late.reserve(WRITE) == pytest.approx(0.1)  # empty bucket: the next slot


def test_two_apps_of_one_tenant_get_their_own_budget_row() -> None:
    tenant = "1e2f3a4b-5c6d-4e7f-8a90-b1c2d3e4f5a6"
    first = budget_key(f"graph:{tenant}:7b8c9d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0e")
    second = budget_key(f"graph:{tenant}:6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d")
    assert first != second
    assert len(first) <= 40 and len(second) <= 40  # controls.key is 40 characters
    assert budget_key("graph:test") == "budget:graph:test"
