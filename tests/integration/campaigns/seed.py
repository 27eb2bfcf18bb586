"""A store with campaign settings and cases already asked, for the response-page tests.

``campaign_settings`` builds validated settings (through the YAML parser, like a real
``reclaim.yaml``); ``asked_cases`` opens cases and marks them asked at a given time;
``answer_link`` signs the link a message would have carried.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import Engine

from reclaim.campaigns.tokens import TokenKeys, sign
from reclaim.config import Settings, parse_settings
from reclaim.domain import case as dc
from reclaim.store import cases as store
from reclaim.store.keys import resolve_keys
from reclaim.store.policies import sync_policies

LINK_KEY = "t" * 40 + "-test-only-response-link-key"  # obviously fake fixture value
LINK_KEY_ENV = "RECLAIM_TEST_LINK_KEY"
KEYS = TokenKeys.of(LINK_KEY)
ASKED_AT = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # a Monday, 10:00 in Paris

POLICY = """
  - name: {name}
    apps: [{app}]
    group: {{name: "{name} users", entra_id: "0f1e2d3c-0000-4000-8000-{index:012d}"}}
    workflow: entra_id
    seat_cost: {{amount: "15", currency: EUR}}
    campaign: {{on_no_response: {default}, channels: [{channels}]}}
"""


def campaign_yaml(
    *,
    data_dir: Path,
    db_url: str,
    base_url: str = "https://reclaim.corp.example",
    smtp_port: int | None = None,
    policies: Iterable[tuple[str, str, str]] = (("Visio", "VISIO.EXE", "keep"),),
    channels: str = "email",
    extra: str = "",
) -> str:
    """The YAML text of a configuration with a ``campaigns:`` section."""
    smtp = (
        f"smtp: {{host: 127.0.0.1, port: {smtp_port}, security: none, "
        "sender: 'Contoso software team <licenses@corp.example>'}\n"
        if smtp_port
        else ""
    )
    text = (
        f"data_dir: {data_dir}\n"
        f"database: {{url: '{db_url}'}}\n"
        "timezone: Europe/Paris\n"
        f"{smtp}"
        "campaigns:\n"
        f"  base_url: {base_url}\n"
        f"  token_keys: [env:{LINK_KEY_ENV}]\n"
        "  org_name: Contoso IT\n"
        "  support_contact: it-help@corp.example\n"
        "  email: {rate_per_second: 50, timeout_seconds: 3}\n"
        f"{extra}"
        "policies:\n"
    )
    for index, (name, app, default) in enumerate(policies, start=1):
        text += POLICY.format(name=name, app=app, default=default, channels=channels, index=index)
    return text


def campaign_settings(**kwargs: object) -> Settings:
    """Validated settings from :func:`campaign_yaml` (set ``LINK_KEY_ENV`` first)."""
    return parse_settings(campaign_yaml(**kwargs), source="test.yaml")  # type: ignore[arg-type]


def asked_cases(
    engine: Engine,
    settings: Settings,
    users: Iterable[str],
    *,
    policy: str = "Visio",
    at: dt.datetime = ASKED_AT,
    last_used: str | None = "2025-12-01",
) -> dict[str, int]:
    """Open one case per user under ``policy`` and mark it asked at ``at``: user → case id."""
    users = list(users)
    now = int(at.timestamp())
    out: dict[str, int] = {}
    with engine.begin() as conn:
        pids = sync_policies(conn, settings.policies, now=now)
        ids, _ = resolve_keys(conn, users=[u.lower() for u in users], apps={}, now=now)
        by_key = dict(ids)
        data = {"verdict": "unused", **({"last_used": last_used} if last_used else {})}
        for user in users:
            opened = dc.open_case(policy=policy, user=user, cycle=1, at=at, data=data)
            asked = dc.mark_asked(opened, at=at, channel="email")
            saved = store.insert_case(
                conn,
                asked,
                policy_id=pids[policy],
                user_id=by_key[user.lower()],
                verdict="unused",
                reason="no use of Visio for 91 days (threshold 30)",
                last_used=None,
                next_due_at=now + 10 * 86400,
            )
            out[user] = saved.id
    return out


def answer_link(
    base_url: str,
    case_id: int,
    user: str,
    *,
    at: dt.datetime = ASKED_AT,
    days: int = 10,
    keys: TokenKeys = KEYS,
) -> str:
    """The page link a message sent at ``at`` carries for this case and person."""
    token = sign(
        keys=keys,
        case_id=str(case_id),
        upn=user,
        purpose="answer",
        expires_at=at + dt.timedelta(days=days),
        now=at,
    )
    return f"{base_url.rstrip('/')}/respond/{token}"
