"""AD sync: a license group's members, read in ranges from Samba, into the store."""

from __future__ import annotations

import datetime as dt

import pytest
from ldap3 import MODIFY_ADD, MODIFY_DELETE, Connection
from sqlalchemy import Engine, select

from reclaim.domain.policy import Workflow
from reclaim.services.ad_sync import AdSyncError, sync_all, sync_policy
from reclaim.store.identity_tables import identities
from reclaim.store.tables import memberships, policies, users
from reclaim.testing import samba_seed as seed
from reclaim.testing.hybrid import HybridTenant
from reclaim.testing.samba import SambaTemplate
from reclaim.workflows.onprem_ad import OnPremAdDirectory

from .conftest import policy_for

NOW = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(days=1)


def _active(engine: Engine, policy: str) -> dict[str, tuple[int, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(users.c.upn, memberships.c.granted_at, memberships.c.granted_source)
            .join(users, users.c.id == memberships.c.user_id)
            .join(policies, policies.c.id == memberships.c.policy_id)
            .where(policies.c.name == policy, memberships.c.active.is_(True))
        )
        return {r.upn: (r.granted_at, r.granted_source) for r in rows}


def test_big_group_is_read_in_ranges_into_the_store(
    engine: Engine, directory: OnPremAdDirectory, hybrid: HybridTenant, admin: Connection
) -> None:
    policy = policy_for(hybrid, seed.LIC_BIG)
    report = sync_policy(engine, policy, directory=directory, configured=(policy,), now=NOW)
    assert (report.members, report.joined, report.left) == (1601, 1601, 0)
    assert report.identities == 1601 and report.skipped == []
    assert report.with_grant_time == 0  # Samba keeps no msDS-ReplValueMetaData
    active = _active(engine, policy.name)
    assert len(active) == 1601
    assert active[seed.BOB.upn] == (int(NOW.timestamp()), "first_seen")
    assert "bulk1599@corp.example.test" in active
    with engine.connect() as conn:
        sams = dict(
            conn.execute(
                select(users.c.upn, identities.c.sam_account_name).join(
                    users, users.c.id == identities.c.user_id
                )
            ).all()
        )
    assert sams["bulk0042@corp.example.test"] == "bulk0042"

    # Bob leaves in AD; the next sync records it and keeps everyone else's first-seen time.
    assert admin.modify(seed.LIC_BIG.dn, {"member": [(MODIFY_DELETE, [seed.BOB.dn])]})
    try:
        again = sync_policy(engine, policy, directory=directory, configured=(policy,), now=LATER)
    finally:
        admin.modify(seed.LIC_BIG.dn, {"member": [(MODIFY_ADD, [seed.BOB.dn])]})
    assert (again.members, again.joined, again.left) == (1600, 0, 1)
    after = _active(engine, policy.name)
    assert seed.BOB.upn not in after
    assert after["bulk0001@corp.example.test"][0] == int(NOW.timestamp())


def test_nested_groups_are_skipped_not_counted(
    engine: Engine, directory: OnPremAdDirectory, hybrid: HybridTenant
) -> None:
    policy = policy_for(hybrid, seed.LIC_PROJECT)
    report = sync_policy(engine, policy, directory=directory, configured=(policy,), now=NOW)
    assert report.members == 1 and set(_active(engine, policy.name)) == {seed.ALICE.upn}
    assert len(report.skipped) == 1 and "Team-PMs" in report.skipped[0]


def test_an_empty_read_never_empties_a_known_group(
    engine: Engine, directory: OnPremAdDirectory, hybrid: HybridTenant
) -> None:
    visio = policy_for(hybrid, seed.LIC_VISIO)
    sync_policy(engine, visio, directory=directory, configured=(visio,), now=NOW)
    # Point the same policy at the empty group, as a wrong DN in the config would.
    wrong = visio.model_copy(
        update={
            "group": visio.group.model_copy(update={"entra_id": hybrid.group_id(seed.LIC_EMPTY.dn)})
        }
    )
    with pytest.raises(AdSyncError):
        sync_policy(engine, wrong, directory=directory, configured=(wrong,), now=LATER)
    assert len(_active(engine, visio.name)) == 4


def test_sync_all_picks_onprem_policies(
    engine: Engine, directory: OnPremAdDirectory, hybrid: HybridTenant
) -> None:
    visio = policy_for(hybrid, seed.LIC_VISIO)
    manual = visio.model_copy(update={"name": "Manual", "workflow": Workflow.MANUAL})
    reports = sync_all(engine, (visio, manual), directory=directory, now=NOW)
    assert [r.policy for r in reports] == ["LIC-Visio"]
    with pytest.raises(AdSyncError):
        sync_all(engine, (visio, manual), directory=directory, only="Manual", now=NOW)


def test_ad_sync_records_each_members_sid(
    engine: Engine,
    directory: OnPremAdDirectory,
    hybrid: HybridTenant,
    samba_template: SambaTemplate,
) -> None:
    """The SIDs read from AD land in identities, so osquery's SIDs map to people."""
    policy = policy_for(hybrid, seed.LIC_VISIO)
    sync_policy(engine, policy, directory=directory, configured=(policy,), now=NOW)
    with engine.connect() as conn:
        sids = dict(
            conn.execute(
                select(users.c.upn, identities.c.on_prem_sid).join(
                    users, users.c.id == identities.c.user_id
                )
            ).all()
        )
    assert sids[seed.ALICE.upn] == samba_template.sid(seed.ALICE.dn).upper()
    assert all(sid and sid.startswith("S-1-5-21-") for sid in sids.values())
