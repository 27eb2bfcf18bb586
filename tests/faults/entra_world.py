"""A large Entra organization for the kill runs: ``n`` idle licensed members (and as
many busy ones) on the Graph test server, synced into a store by the real sync.

It reuses the runner world of tests/integration/entra (config file, store, clock); only
the tenant is bigger and the usage thinner (two days of Outlook per person: seen long
ago and yesterday, so the data is fresh; Excel yesterday for the busy half).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from reclaim.config import parse_settings
from reclaim.services.entra_sync import sync_policy
from reclaim.testing.graph import GraphServer, ManualClock, Tenant
from tests.integration.decisions.conftest import import_usage, open_store
from tests.integration.entra.conftest import CLIENT_ID, CLIENT_SECRET, DOMAIN, E3_SKU, TENANT_ID
from tests.integration.entra.runner_world import (
    Clock,
    EntraWorld,
    config_text,
    entra_policy,
    now_utc,
)

DAY = dt.timedelta(days=1)
GROUP = "fa000000-0000-0000-0000-0000000000fa"


def user_id(i: int) -> str:
    """The object id of the i-th member."""
    return f"fa{i:06d}-0000-4000-8000-000000000000"


def upn(i: int) -> str:
    """The UPN of the i-th member."""
    return f"kill{i:05d}@{DOMAIN}"


def group_size(n: int) -> int:
    """Members for ``n`` candidates: the mass-removal guard halts a policy that would
    touch more than half its group at once, so the other half use Excel."""
    return 2 * n + 2


def kill_tenant(n: int) -> Tenant:
    """A tenant whose "E3 Users" group grants E3 to :func:`group_size` members."""
    t = Tenant(TENANT_ID, "Contoso Kill Test", DOMAIN)
    t.add_client(CLIENT_ID, CLIENT_SECRET)
    t.add_sku("SPE_E3", group_size(n) + 10, sku_id=E3_SKU)
    t.add_group("E3 Users", id=GROUP, assigned_licenses=["SPE_E3"])
    for i in range(group_size(n)):
        t.add_user(upn(i), f"Kill {i:05d}", id=user_id(i))
        t.add_member(GROUP, user_id(i), journal=False)
    return t


def build_kill_world(
    server: GraphServer,
    server_clock: ManualClock,
    db_url: str,
    tmp: Path,
    n: int,
    *,
    ask: bool = True,
) -> EntraWorld:
    """The server reset to :func:`kill_tenant`, a store synced from it, usage imported;
    the E3 policy asks first (unless ``ask`` is False: then the first pass removes) and
    may remove all ``n`` in one run."""
    server.reset(kill_tenant(n))
    # Many worker processes run on real time against this server: throttling on its
    # fake clock would never refill. Throttling has its own tests.
    server.throttle.configure(enabled=False)
    now = now_utc()
    for user in server.tenant.users.values():
        for state in user.license_states:
            state.last_updated = now - 300 * DAY
    for membership in server.tenant.groups[GROUP].members.values():
        membership.since = now - 300 * DAY
    text = config_text(server, db_url, tmp / "data", entra_policy("E3", GROUP, ask=ask, cap=n))
    config = tmp / "reclaim.yaml"
    config.write_text(text, encoding="utf-8")
    settings = parse_settings(text, source=str(config))
    ctx = open_store(settings, now=now)
    world = EntraWorld(ctx, server, server_clock, config, Clock(now))
    sync_policy(
        ctx.engine,
        world.client(),
        settings.policy("E3"),
        configured=settings.policies,
        now=now - 300 * DAY,
    )
    first, yesterday = (now - 200 * DAY).date(), (now - DAY).date()
    everyone = range(group_size(n))
    rows = [(upn(i), "OUTLOOK.EXE", d, 600) for i in everyone for d in (first, yesterday)]
    rows += [(upn(i), "EXCEL.EXE", yesterday, 1800) for i in everyone if i >= n]
    import_usage(ctx.engine, tmp, rows, now=now)
    server.requests.clear()
    return world
