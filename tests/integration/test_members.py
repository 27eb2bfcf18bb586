"""Members import (the offline group source) and per-member usage with app aliases."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from reclaim.config import parse_settings
from reclaim.services.members_import import MembersFileError, import_members
from reclaim.services.usage_import import import_usage_file
from reclaim.store.policies import policy_id
from reclaim.store.tables import memberships, policies, users
from reclaim.store.usage_queries import member_usage

NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
CONFIG = """\
policies:
  - name: Visio
    apps: [VISIO.EXE, Microsoft Visio]
    group: {name: Visio users}
    workflow: manual
    seat_cost: {amount: 15}
"""


@pytest.fixture
def settings():
    return parse_settings(CONFIG, source="reclaim.yaml")


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def active(engine: Engine) -> dict[str, tuple[int | None, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(users.c.upn, memberships.c.granted_at, memberships.c.granted_source)
            .join(users, users.c.id == memberships.c.user_id)
            .where(memberships.c.active.is_(True))
        )
        return {r.upn: (r.granted_at, r.granted_source) for r in rows}


def test_members_file_replaces_the_list(engine: Engine, settings, tmp_path: Path) -> None:
    pol = settings.policy("Visio")
    first = write(
        tmp_path / "m1.csv",
        "user,granted_at\nA@x.test,2026-01-15\nb@x.test,\n,2026-01-01\nc@x.test,soon\n",
    )
    report = import_members(engine, pol, first, configured=settings.policies, now=NOW)
    assert (report.members, report.joined, report.left) == (2, 2, 0)
    assert report.rejected == [
        f"{first}:4: missing user",
        f"{first}:5: granted_at 'soon' is not an ISO date or date-time",
    ]
    jan15 = int(dt.datetime(2026, 1, 15, tzinfo=dt.UTC).timestamp())
    assert active(engine) == {
        "a@x.test": (jan15, "file"),
        "b@x.test": (int(NOW.timestamp()), "first_seen"),
    }
    later = NOW + dt.timedelta(days=3)
    second = write(tmp_path / "m2.csv", "user\nb@x.test\nd@x.test\n")
    report = import_members(engine, pol, second, configured=settings.policies, now=later)
    assert (report.members, report.joined, report.left) == (2, 1, 1)
    assert active(engine) == {
        "b@x.test": (int(NOW.timestamp()), "first_seen"),  # first seen is kept
        "d@x.test": (int(later.timestamp()), "first_seen"),
    }


def test_empty_members_file_is_refused(engine: Engine, settings, tmp_path: Path) -> None:
    pol = settings.policy("Visio")
    import_members(
        engine,
        pol,
        write(tmp_path / "m.csv", "user\na@x.test\n"),
        configured=settings.policies,
        now=NOW,
    )
    with pytest.raises(MembersFileError, match="refusing to record all 1 current members"):
        import_members(
            engine,
            pol,
            write(tmp_path / "e.csv", "user\n,\n"),
            configured=settings.policies,
            now=NOW,
        )
    assert set(active(engine)) == {"a@x.test"}
    with pytest.raises(MembersFileError, match="no 'user' column"):
        import_members(
            engine,
            pol,
            write(tmp_path / "b.csv", "email\na@x.test\n"),
            configured=settings.policies,
            now=NOW,
        )


def test_member_usage_counts_every_alias(engine: Engine, settings, tmp_path: Path) -> None:
    pol = settings.policy("Visio")
    usage = write(
        tmp_path / "u.csv",
        (
            "user,app,timestamp,seconds\n"
            "a@x.test,VISIO.EXE,2026-10-20T10:00:00Z,600\n"
            "A@X.test,Microsoft Visio,2026-10-25T10:00:00Z,1200\n"
            "a@x.test,Miro,2026-10-30T10:00:00Z,999\n"
            "b@x.test,Teams,2026-10-30T10:00:00Z,60\n"
            "a@x.test,visio.exe,2026-06-01T10:00:00Z,60\n"
        ),
    )
    import_usage_file(engine, usage, now=NOW, report_dir=tmp_path / "r")
    import_members(
        engine,
        pol,
        write(tmp_path / "m.csv", "user\na@x.test\nb@x.test\nc@x.test\n"),
        configured=settings.policies,
        now=NOW,
    )
    with engine.connect() as conn:
        pid = policy_id(conn, "Visio")
        assert pid is not None
        rows = {
            m.user: m
            for m in member_usage(
                conn, policy_id=pid, app_names=pol.apps, as_of=dt.date(2026, 11, 1), window_days=30
            )
        }
        past = {
            m.user: m
            for m in member_usage(
                conn, policy_id=pid, app_names=pol.apps, as_of=dt.date(2026, 10, 22), window_days=30
            )
        }
    a, b, c = rows["a@x.test"], rows["b@x.test"], rows["c@x.test"]
    assert (a.last_used, a.seconds_in_window) == (dt.date(2026, 10, 25), 1800)
    assert a.last_observed == dt.date(2026, 10, 30)
    assert (b.last_used, b.seconds_in_window, b.last_observed) == (None, 0, dt.date(2026, 10, 30))
    assert (c.last_used, c.last_observed) == (None, None)  # no data, not "no use"
    # As of an earlier day, later use and later observations don't count.
    assert (past["a@x.test"].last_used, past["a@x.test"].seconds_in_window) == (
        dt.date(2026, 10, 20),
        600,
    )
    assert past["a@x.test"].last_observed == dt.date(2026, 10, 20)


def test_policy_removed_from_config_is_disabled_not_forgotten(engine: Engine) -> None:
    from reclaim.store.policies import sync_policies

    first = parse_settings(CONFIG, source="a.yaml")
    with engine.begin() as conn:
        ids = sync_policies(conn, first.policies, now=1)
        sync_policies(conn, (), now=2)
        row = conn.execute(select(policies)).one()
    assert (row.id, row.enabled) == (ids["Visio"], False)
