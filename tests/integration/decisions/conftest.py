"""Shared set-up for decision tests: a configured store with members and usage."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest
from sqlalchemy import Engine

from reclaim.bootstrap import Context, open_context
from reclaim.config import Settings, parse_settings
from reclaim.services.members_import import import_members
from reclaim.services.usage_import import import_usage_file
from reclaim.store.engine import make_engine
from reclaim.store.migrate import upgrade

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 10, 8, 0, tzinfo=UTC)  # a Tuesday
TODAY = NOW.date()

BASE_POLICY = """
  - name: {name}
    apps: [{apps}]
    group: {{name: "{name} users"}}
    workflow: manual
    seat_cost: {{amount: "{cost}", currency: USD}}
    unused_days: {unused_days}
    grace_days: 14
    ask_permission: {ask}
    require_approval: {approval}
    campaign: {{response_timeout_days: 10, reminder_days: [3, 6], on_no_response: {default}}}
    caps: {{max_per_run: {cap}, max_percent_of_group: {percent}}}
    schedule: "0 6 * * *"
"""


def policy_yaml(
    name: str,
    *,
    apps: str = "VISIO.EXE",
    cost: str = "15",
    unused_days: int = 30,
    ask: bool = True,
    approval: bool = False,
    default: str = "keep",
    cap: int = 50,
    percent: float = 100,
    extra: str = "",
) -> str:
    """One policy's YAML (manual workflow), with ``extra`` lines appended."""
    text = BASE_POLICY.format(
        name=name,
        apps=apps,
        cost=cost,
        unused_days=unused_days,
        ask=str(ask).lower(),
        approval=str(approval).lower(),
        default=default,
        cap=cap,
        percent=percent,
    )
    return text + "".join(f"    {line}\n" for line in extra.splitlines() if line)


def make_settings(db_url: str, data_dir: Path, *policies: str, safety: str = "") -> Settings:
    """Settings for ``db_url`` with these policies."""
    text = f"data_dir: {data_dir}\ndatabase: {{url: '{db_url}'}}\n{safety}policies:\n" + "".join(
        policies
    )
    return parse_settings(text, source="test.yaml")


def open_store(settings: Settings, *, now: dt.datetime = NOW) -> Context:
    """Open the store for ``settings`` (migrating it, PostgreSQL too) and sync policies."""
    engine = make_engine(settings.database_url())
    upgrade(engine)
    engine.dispose()
    return open_context(settings=settings, now=now)


def import_usage(
    engine: Engine,
    tmp: Path,
    rows: Iterable[tuple[str, str, dt.date, int | None]],
    *,
    name: str = "usage.csv",
    now: dt.datetime = NOW,
) -> None:
    """Import (user, app, day, seconds or None) through the real import path."""
    path = tmp / name
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("user", "app", "date", "seconds"))
        for user, app, day, secs in rows:
            w.writerow((user, app, day.isoformat(), "" if secs is None else secs))
    import_usage_file(engine, path, now=now, source="test", report_dir=tmp / "reports")


def import_group(
    ctx: Context,
    tmp: Path,
    policy: str,
    members: Mapping[str, dt.date | None],
    *,
    now: dt.datetime = NOW,
) -> None:
    """Replace a policy's member list (user → grant date or unknown)."""
    path = tmp / f"members-{policy}.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("user", "granted_at"))
        for user, granted in members.items():
            w.writerow((user, granted.isoformat() if granted else ""))
    import_members(
        ctx.engine, ctx.settings.policy(policy), path, configured=ctx.settings.policies, now=now
    )


def workdays(start: dt.date, end: dt.date, step: int = 1) -> list[dt.date]:
    """Monday–Friday days from ``start`` to ``end`` inclusive, every ``step``-th one."""
    days = []
    d = start
    while d <= end:
        if d.weekday() < 5:
            days.append(d)
        d += dt.timedelta(days=1)
    return days[::step]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory for settings."""
    return tmp_path / "data"
