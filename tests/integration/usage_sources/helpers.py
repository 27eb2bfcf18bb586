"""Reading roll-ups back in plain terms, and seeding identities, for usage-source tests."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import Engine, select

from reclaim.services.identities_import import import_identities
from reclaim.store.tables import apps, sources, usage_daily, usage_observed, users
from reclaim.store.usage_queries import day_date

ALICE_SID = "S-1-5-21-1004336348-1177238915-682003330-1105"
BOB_SID = "S-1-5-21-1004336348-1177238915-682003330-1106"
CAROL_ENTRA = "ca000000-0000-0000-0000-000000000006"
IDENTITIES = f"""upn,sid,entra_id,sam
alice@corp.example,{ALICE_SID},,alice
bob@corp.example,{BOB_SID},,bob
carol@corp.example,,{CAROL_ENTRA},carol
"""


def seed_identities(engine: Engine, tmp_path: Path, text: str = IDENTITIES) -> None:
    path = tmp_path / "identities.csv"
    path.write_text(text)
    report = import_identities(engine, path, now=dt.datetime(2026, 9, 1, tzinfo=dt.UTC))
    assert report.rejected == []


def daily(engine: Engine) -> list[tuple[str, str, str, int, int]]:
    """(user, app key, date, seconds, events) for every daily roll-up row."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                users.c.upn,
                apps.c.key,
                usage_daily.c.day,
                usage_daily.c.seconds,
                usage_daily.c.events,
            )
            .join(users, users.c.id == usage_daily.c.user_id)
            .join(apps, apps.c.id == usage_daily.c.app_id)
            .order_by(users.c.upn, apps.c.key, usage_daily.c.day)
        )
        return [(u, a, day_date(d).isoformat(), s, e) for u, a, d, s, e in rows]


def observed(engine: Engine) -> list[tuple[str, str, str]]:
    """(user, source, date) for every day a user was observed."""
    out = []
    with engine.connect() as conn:
        rows = conn.execute(
            select(users.c.upn, sources.c.name, usage_observed.c.month, usage_observed.c.days_mask)
            .join(users, users.c.id == usage_observed.c.user_id)
            .join(sources, sources.c.id == usage_observed.c.source_id)
        )
        for upn, src, month, mask in rows:
            for bit in range(31):
                if mask >> bit & 1:
                    out.append(
                        (upn, src, dt.date(month // 12, month % 12 + 1, bit + 1).isoformat())
                    )
    return sorted(out)


def app_keys(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return {k for (k,) in conn.execute(select(apps.c.key))}
