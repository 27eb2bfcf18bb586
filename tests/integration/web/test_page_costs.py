"""What the dashboard and the policies page cost at a large tenant's size
(bench/web_scale.py: 500,000 people, 1.5 million memberships, PostgreSQL).

- Once their figures are computed, a view reads nothing whose size grows with the
  tenant: no membership aggregate (the cache's fingerprint and the policy list used to
  read all memberships, ~0.2 s each at 1.5 million) and no count of every person
  (~0.1 s at 500,000). The figures still follow a change of the members or people.
- The figures are computed by runs of policies (``decisions.evaluate_in_runs``), never
  every member of every policy at once (~1.5 GB at 1.5 million memberships).
- A policy's preview counts are tallied once, not at every view.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from reclaim.domain.policy import Policy
from reclaim.services import decisions
from reclaim.services.members_import import import_members
from reclaim.services.report import savings_report
from reclaim.web.policies_view import Outlook, outlooks
from reclaim.web.savings_cache import SavingsCache

from .conftest import WebEnv, client_for, sign_in
from .test_policies import UNUSED, USER_IN_USE, seed

pytestmark = pytest.mark.anyio


def members_file(path: Path, users: list[str]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("user", "granted_at"))
        w.writerows((u, "2025-01-01") for u in users)
    return path


def import_group(web: WebEnv, name: str, path: Path) -> None:
    settings = web.ctx.settings
    import_members(
        web.ctx.engine,
        settings.policy(name),
        path,
        configured=settings.policies,
        now=web.clock(),
    )


def seen(page: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}">([^<]+)<', page)
    assert found, f"no {testid} on the page"
    return found.group(1)


async def test_views_with_figures_computed_read_nothing_that_grows_with_the_tenant(
    web_any_db: WebEnv, tmp_path: Path
) -> None:
    web = web_any_db
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.lower().split()))

    async with client_for(web.app) as c:
        await seed(web, c, tmp_path)
        await sign_in(c)
        # The first views compute the figures (this app waits for them); the savings
        # report brings the usage summary up to date first, which the figures computed
        # beside it see on the next view.
        for path in ("/", "/policies", "/", "/policies"):
            assert (await c.get(path)).status_code == 200
        event.listen(web.ctx.engine, "before_cursor_execute", record)
        try:
            dashboard = (await c.get("/")).text
            listing = (await c.get("/policies")).text
        finally:
            event.remove(web.ctx.engine, "before_cursor_execute", record)
        assert statements, "the views read nothing at all?"
        assert [s for s in statements if "memberships" in s] == []
        assert [s for s in statements if "count(" in s and re.search(r"from users\b", s)] == []
        assert seen(dashboard, "users-seen") == "9"  # 7 Miro members + 2 reclaimed earlier
        assert 'data-testid="recomputing"' not in dashboard + listing

        # A change of the members still reaches the figures: one more (unused) member.
        group = [*UNUSED, USER_IN_USE, "m5@corp.example", "m6@corp.example", "new@corp.example"]
        import_group(web, "Miro", members_file(tmp_path / "more.csv", group))
        miro = (await c.get("/api/v1/policies/miro", headers=web.auth("viewer"))).json()
        assert miro["members"] == 8 and sum(miro["verdicts"].values()) == 8
        assert seen((await c.get("/")).text, "users-seen") == "10"
        # ... and so does one leaving.
        import_group(web, "Miro", members_file(tmp_path / "fewer.csv", group[:-1]))
        miro = (await c.get("/api/v1/policies/miro", headers=web.auth("viewer"))).json()
        assert miro["members"] == 7 and sum(miro["verdicts"].values()) == 7


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The policies each evaluation call judged, with runs of one membership at most
    (so each run is one policy)."""
    calls: list[list[str]] = []
    real = decisions.evaluate_with

    def spy(conn: Any, policies: list[Policy], **kwargs: Any) -> Any:
        calls.append([p.name for p in policies])
        return real(conn, policies, **kwargs)

    monkeypatch.setattr(decisions, "RUN_MEMBERS", 1)
    monkeypatch.setattr(decisions, "evaluate_with", spy)
    return calls


async def test_figures_are_computed_by_runs_of_policies(
    web: WebEnv, tmp_path: Path, runs: list[list[str]]
) -> None:
    async with client_for(web.app) as c:
        await seed(web, c, tmp_path)
    import_group(web, "Visio", members_file(tmp_path / "visio.csv", UNUSED[:3]))
    settings, now = web.ctx.settings, web.clock()
    whole = decisions.evaluate(
        web.ctx.engine, settings.policies, as_of=now.date(), now=now, configured=settings.policies
    )
    runs.clear()

    report = savings_report(web.ctx.engine, settings=settings, now=now)
    assert runs == [["Visio"], ["Miro"]]
    # The same figures as judging every policy in one call.
    assert {r["policy"]: (r["members"], r["candidates"]) for r in report["policies"]} == {
        pv.policy.name: (pv.group_size, len(pv.candidates())) for pv in whole
    }
    assert [(pv.group_size, len(pv.candidates())) for pv in whole] == [(3, 0), (7, 4)]

    runs.clear()
    looks = outlooks(web.ctx, now=now, cache=SavingsCache()).value
    assert runs == [["Visio"], ["Miro"]]
    assert {name: o.verdicts for name, o in looks.items()} == {
        pv.policy.name: pv.breakdown() for pv in whole
    }


def test_policy_runs_keep_the_order_and_group_small_policies(web: WebEnv, tmp_path: Path) -> None:
    import_group(web, "Visio", members_file(tmp_path / "visio.csv", UNUSED[:3]))
    import_group(web, "Miro", members_file(tmp_path / "miro.csv", UNUSED[:2]))
    pols = web.ctx.settings.policies
    with web.ctx.engine.connect() as conn:

        def names(members: int) -> list[list[str]]:
            return [
                [p.name for p in run] for run in decisions.policy_runs(conn, pols, members=members)
            ]

        assert names(5) == [["Visio", "Miro"]]
        assert names(4) == [["Visio"], ["Miro"]]
        assert names(1) == [["Visio"], ["Miro"]]  # a larger policy is a run of its own


class CountingList(list[dict[str, Any]]):
    """A list that counts how often it is walked."""

    walks = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self.walks += 1
        return super().__iter__()


def test_preview_counts_are_tallied_once() -> None:
    def item(action: str, status: str, approval: bool = False) -> dict[str, Any]:
        return {"action": action, "status": status, "needs_approval": approval}

    items = CountingList(
        [
            item("ask", "planned"),
            item("ask", "deferred_by_cap"),
            item("remove", "planned", approval=True),
            item("remove", "halted"),
        ]
    )
    look = Outlook({}, cap=10, halted=False, alerts=[], items=items, evaluated_at="now")
    walked = items.walks
    for _ in range(3):
        summary = look.summary()
    assert items.walks == walked  # views read the tally, not the items
    assert summary == {
        "ask": 1,
        "remove": 1,
        "remove_awaiting_approval": 1,
        "held": 2,
        "total": 4,
        "cap": 10,
        "halted": False,
        "alerts": [],
        "evaluated_at": "now",
    }
