"""Long recomputations show progress: after a change, pages answer at once with the last
figures (or none yet) marked as being recomputed and reload themselves until the new
ones are there; the API still waits for figures that match the data.

The savings report is held at a gate (a wrapper around the real one, in the cache's
own module) so that "still computing" is a state the test controls, not a race.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reclaim.store.engine import make_engine
from reclaim.store.migrate import upgrade
from reclaim.web import savings_cache
from reclaim.web.settings import WebSettings
from tests.integration.web.case_seed import seed_case
from tests.integration.web.conftest import (
    START,
    TEST_SECRET,
    WebEnv,
    client_for,
    make_env,
    sign_in,
)

pytestmark = pytest.mark.anyio
RECOMPUTING = 'data-testid="recomputing"'
REFRESH = 'http-equiv="refresh"'


class Gate:
    """Holds every savings report computation until opened."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.calls = 0
        self._real = savings_cache.savings_report

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        assert self.open.wait(30), "the test never opened the gate"
        return self._real(*args, **kwargs)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    g = Gate()
    monkeypatch.setattr(savings_cache, "savings_report", g)
    yield g
    g.open.set()  # never leave a computation thread waiting


@pytest.fixture
def quick(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WebEnv:
    """The app as ``reclaim serve`` runs it: pages wait at most 0 ms for slow figures."""
    monkeypatch.delenv("RECLAIM_DATA_DIR", raising=False)
    engine = make_engine(f"sqlite:///{tmp_path / 'reclaim.db'}")
    upgrade(engine)
    return make_env(
        engine, tmp_path / "data", settings=WebSettings(secret=TEST_SECRET, render_wait_ms=0)
    )


def realized(page: str) -> str:
    found = re.search(r'data-testid="realized-monthly-USD">([^<]+)<', page)
    assert found, "no realized savings tile"
    return found.group(1)


async def settled(c: httpx.AsyncClient, path: str) -> str:
    """The page once it no longer says it is recomputing."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        page = (await c.get(path)).text
        if RECOMPUTING not in page:
            return page
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} still recomputing after 20 s")


async def test_dashboard_answers_at_once_and_shows_it_is_recomputing(
    quick: WebEnv, gate: Gate
) -> None:
    engine = quick.ctx.engine
    for n in range(2):
        seed_case(engine, to="removed", user=f"gone{n}@corp.example", at=START)
    async with client_for(quick.app) as c:
        await sign_in(c)
        t0 = time.monotonic()
        first = await c.get("/")
        assert first.status_code == 200 and time.monotonic() - t0 < 10  # not the gate's 30 s
        assert RECOMPUTING in first.text and REFRESH in first.text
        assert "They appear here when ready" in first.text
        assert 'data-testid="savings-pending"' in first.text
        assert 'data-testid="savings-Visio"' not in first.text
        assert 'data-testid="events-accepted"' in first.text  # the cheap parts are there

        gate.open.set()
        ready = await settled(c, "/")
        assert REFRESH not in ready and realized(ready) == "30.00"  # 2 seats x 15 USD

        gate.open.clear()  # a change: the next view shows the last figures, marked
        seed_case(engine, to="removed", user="gone2@corp.example", at=START)
        stale = await c.get("/")
        assert RECOMPUTING in stale.text and "The figures below are from 2026-11-02" in stale.text
        assert realized(stale.text) == "30.00"
        policies = await c.get("/policies")
        assert policies.status_code == 200 and RECOMPUTING in policies.text

        # The API never answers with figures older than the data: it waits.
        api = asyncio.create_task(c.get("/api/v1/reports/savings", headers=quick.auth("viewer")))
        await asyncio.sleep(0.3)
        assert not api.done()
        gate.open.set()
        visio = next(p for p in (await api).json()["policies"] if p["policy"] == "Visio")
        assert visio["realized"]["monthly"] == "45.00"
        assert realized(await settled(c, "/")) == "45.00"
        assert RECOMPUTING not in (await c.get("/policies")).text


async def test_concurrent_views_share_one_computation(quick: WebEnv, gate: Gate) -> None:
    seed_case(quick.ctx.engine, to="removed", user="gone@corp.example", at=START)
    async with client_for(quick.app) as c:
        await sign_in(c)
        pages = await asyncio.gather(*(c.get("/") for _ in range(5)))
        assert all(RECOMPUTING in p.text for p in pages)
        gate.open.set()
        assert realized(await settled(c, "/")) == "15.00"
    assert gate.calls == 1
