"""A source that stops: its users become 'no data' (never candidates), and the source
is reported stale."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import Engine

from reclaim.domain.policy import Policy
from reclaim.domain.usage import Evaluator, MemberFacts, UsageFacts, VerdictKind
from reclaim.services.members_import import import_members
from reclaim.services.osquery_import import import_osquery_file
from reclaim.store.policies import policy_id
from reclaim.store.source_health import source_health
from reclaim.store.usage_queries import member_usage
from reclaim.usage_sources.app_aliases import AppMatcher
from tests.integration.usage_sources.helpers import ALICE_SID, BOB_SID, observed, seed_identities
from tests.unit.usage_sources.osquery_lines import event, log, snapshot

VISIO = Policy.model_validate(
    {
        "name": "Visio",
        "apps": ["VISIO.EXE"],
        "group": {"name": "Visio users"},
        "workflow": "manual",
        "seat_cost": {"amount": 15},
        "unused_days": 30,
        "grace_days": 0,
    }
)
SEP1 = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
LAST_REPORT = dt.datetime(2026, 9, 28, 23, 0, tzinfo=dt.UTC)  # then osquery goes quiet
FRESHNESS = 7


def verdicts(engine: Engine, as_of: dt.date) -> dict[str, VerdictKind]:
    first = {u: dt.date.fromisoformat(d) for u, _, d in reversed(observed(engine))}
    with engine.connect() as conn:
        pid = policy_id(conn, "Visio")
        assert pid is not None
        members = member_usage(
            conn, policy_id=pid, app_names=VISIO.apps, as_of=as_of, window_days=90
        )
    judge = Evaluator(VISIO, as_of=as_of, freshness_days=FRESHNESS).evaluate
    return {
        m.user: judge(
            MemberFacts.of(m.user),
            UsageFacts(
                last_used=m.last_used,
                first_observed=first.get(m.user),
                last_observed=m.last_observed,
            ),
        ).kind
        for m in members
    }


def test_a_quiet_source_makes_no_candidates_and_is_reported_stale(
    engine: Engine, tmp_path: Path
) -> None:
    seed_identities(engine, tmp_path)
    days = [SEP1 + dt.timedelta(days=d) for d in range(28)]
    lines = [
        event(
            "reclaim_userassist",
            {
                "path": r"C:\A\VISIO.EXE",
                "last_execution_time": int(SEP1.timestamp()) + 3600,
                "sid": ALICE_SID,
            },
        )
    ]
    lines += [
        snapshot(
            "reclaim_heartbeat_windows",
            [{"sid": sid, "user": "x"} for sid in (ALICE_SID, BOB_SID)],
            at=int(d.timestamp()) + 9 * 3600,
        )
        for d in days
    ]
    log_file = tmp_path / "osqueryd.results.log"
    log_file.write_bytes(log(*lines))
    report = import_osquery_file(
        engine, log_file, now=LAST_REPORT, apps=AppMatcher([VISIO.apps]), report_dir=tmp_path / "r"
    )
    assert (report.events, report.observations) == (1, 56)
    members = tmp_path / "visio.csv"
    members.write_text(
        "user,granted_at\nalice@corp.example,2026-01-01\nbob@corp.example,2026-01-01\n"
    )
    import_members(engine, VISIO, members, configured=(VISIO,), now=SEP1)

    # The day after the last report, both are judged: neither used Visio for 30 days.
    fresh = dt.date(2026, 10, 2)
    assert verdicts(engine, fresh) == {
        "alice@corp.example": VerdictKind.UNUSED,
        "bob@corp.example": VerdictKind.UNUSED,
    }
    with engine.connect() as conn:
        (health,) = source_health(
            conn, now=LAST_REPORT + dt.timedelta(days=1), freshness_days=FRESHNESS
        )
    assert (health.name, health.status, health.users_observed) == ("osquery", "fresh", 2)

    # Ten days after osquery went quiet: no data, so nobody is a candidate.
    quiet = LAST_REPORT + dt.timedelta(days=10)
    assert verdicts(engine, quiet.date()) == {
        "alice@corp.example": VerdictKind.NO_DATA,
        "bob@corp.example": VerdictKind.NO_DATA,
    }
    with engine.connect() as conn:
        (health,) = source_health(conn, now=quiet, freshness_days=FRESHNESS)
    assert (health.status, health.users_observed, health.stale) == ("stale", 0, True)
    assert health.last_observed == dt.date(2026, 9, 28)
    assert (health.rows_accepted, health.observations, health.last_received) == (1, 56, LAST_REPORT)
