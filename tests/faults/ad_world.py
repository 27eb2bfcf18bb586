"""The on-prem AD kill runs: LIC-Run on a Samba DC, grown to the run's size, mirrored
into the hybrid Graph tenant, and a store on real time for ``reclaim worker`` processes.

The group needs twice as many members as the run has candidates (the mass-removal
guard halts a policy that touches more than half its group): the quick run uses the
seed's 400 members, 200 idle; a bigger run adds the other bulk users and, past those,
creates ``kfault….`` users in the seed's bulk OU, which :func:`drop_extra_users` deletes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ldap3 import MODIFY_ADD, Connection

from reclaim.config import parse_settings
from reclaim.services.ad_sync import sync_policy
from reclaim.testing import samba_seed as seed
from reclaim.testing.graph import GraphServer, ManualClock
from reclaim.testing.hybrid import HybridTenant, build_hybrid_tenant
from reclaim.testing.samba import SambaDC
from reclaim.workflows.onprem_ad import OnPremAdDirectory
from tests.integration.decisions.conftest import import_usage, open_store
from tests.integration.onprem.runner_world import POLICY, Clock, RunnerWorld, settings_yaml

DAY = dt.timedelta(days=1)
EXTRA_PREFIX = "kfault"


def extra_dn(i: int) -> str:
    return f"CN=Kfault {i:05d},{seed.BULK_OU}"


def members_for(n: int) -> list[str]:
    """The DNs LIC-Run holds for a run of ``n`` candidates (the first ``n`` are idle)."""
    size = 2 * n
    bulk = [u.dn for u in seed.BULK_USERS[:size]]
    return bulk + [extra_dn(i) for i in range(size - len(bulk))]


def grow_run_group(admin: Connection, n: int) -> None:
    """Make LIC-Run hold :func:`members_for` ``n`` (creating users past the seed's)."""
    wanted = members_for(n)
    extra = wanted[len(seed.BULK_USERS) :]
    for i, dn in enumerate(extra):
        sam = f"{EXTRA_PREFIX}{i:05d}"
        attrs = {
            "cn": f"Kfault {i:05d}",
            "sAMAccountName": sam,
            "userPrincipalName": f"{sam}@{seed.DNS_DOMAIN}",
            "userAccountControl": str(seed.UAC_NORMAL_ACCOUNT),
        }
        assert admin.add(dn, ["top", "person", "organizationalPerson", "user"], attrs), admin.result
    more = wanted[seed.RUN_GROUP_SIZE :]
    for start in range(0, len(more), 500):
        chunk = more[start : start + 500]
        assert admin.modify(seed.LIC_RUN.dn, {"member": [(MODIFY_ADD, chunk)]}), admin.result


def drop_extra_users(admin: Connection) -> None:
    """Delete the users :func:`grow_run_group` created (their memberships go with them)."""
    admin.search(seed.BULK_OU, f"(sAMAccountName={EXTRA_PREFIX}*)", attributes=["cn"])
    for entry in list(admin.response or []):
        if entry.get("type") == "searchResEntry":
            admin.delete(entry["dn"])


def upn_of(dn: str) -> str:
    """The UPN of a LIC-Run member's DN. Attribute names and values are compared
    case-blind, as AD does: the DC may hand back a DN spelled otherwise than it was
    written (``cn=`` for ``CN=``), and a case-sensitive prefix check then took a
    "Kfault" user for a seed "Bulk" one."""
    cn = dn.split(",", 1)[0].split("=", 1)[1]
    prefix = EXTRA_PREFIX if cn.lower().startswith("kfault ") else "bulk"
    return f"{prefix}{cn.split()[1]}@{seed.DNS_DOMAIN}"


def build_ad_kill_world(
    *,
    n: int,
    admin: Connection,
    dc: SambaDC,
    server: GraphServer,
    graph_clock: ManualClock,
    db_url: str,
    tmp: Path,
) -> tuple[RunnerWorld, HybridTenant, Path]:
    """Grow LIC-Run, mirror it into a fresh hybrid tenant, and build a store whose
    policy asks first; returns the world, the mirror and the config file."""
    if n > seed.RUN_GROUP_SIZE // 2:
        grow_run_group(admin, n)
    hybrid = build_hybrid_tenant(admin)
    server.reset(hybrid.tenant)
    server.throttle.configure(enabled=False)  # real-time workers; the fake clock never refills
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    text = settings_yaml(
        tmp=tmp,
        db_url=db_url,
        hosts=(dc.address,),
        ca_file=dc.ca_file,
        graph_url=server.base_url,
        tenant_id=hybrid.tenant.tenant_id,
        group_id=hybrid.group_id(seed.LIC_RUN.dn),
        ask=True,
    ).replace("max_per_run: 500", f"max_per_run: {n}")
    config = tmp / "reclaim.yaml"
    config.write_text(text, encoding="utf-8")
    settings = parse_settings(text, source=str(config))
    ctx = open_store(settings, now=now)
    world = RunnerWorld(ctx, hybrid, Clock(now, graph_clock))
    directory = world.directories()(world.policy)  # as a deployment builds it
    assert isinstance(directory, OnPremAdDirectory)
    synced = sync_policy(
        ctx.engine,
        settings.policy(POLICY),
        directory=directory,
        configured=settings.policies,
        now=now - 60 * DAY,
    )
    assert synced.members == 2 * n, synced
    members = members_for(n)
    yesterday, first = (now - DAY).date(), (now - 90 * DAY).date()
    rows: list[tuple[str, str, dt.date, int | None]] = []
    for i, dn in enumerate(members):
        user = upn_of(dn)
        rows += [(user, "OUTLOOK.EXE", first, 600), (user, "OUTLOOK.EXE", yesterday, 600)]
        if i >= n:
            rows.append((user, "VISIO.EXE", yesterday, 1800))
    import_usage(ctx.engine, tmp, rows, now=now)
    return world, hybrid, config
