"""The onprem_ad workflow against a real Samba DC and a Graph tenant mirroring it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from ldap3 import Connection

from reclaim.connectors.errors import AlreadyDone, NotFound, Rejected, WriteRefused
from reclaim.connectors.graph import GraphClient
from reclaim.connectors.ldap import LdapConnector, LdapSettings
from reclaim.testing import samba_seed as seed
from reclaim.testing.hybrid import HybridTenant, run_directory_sync
from reclaim.testing.samba import SambaDC
from reclaim.workflows.directory import DirectoryPort, RemoveOutcome
from reclaim.workflows.onprem_ad import OnPremAdDirectory, Step
from tests.integration.ad.helpers import direct_members

from .conftest import policy_for

Make = Callable[..., OnPremAdDirectory]


def _names(directory: OnPremAdDirectory) -> list[str]:
    return [s.step for s in directory.log.drain()]


def test_is_a_directory_port(directory: OnPremAdDirectory) -> None:
    assert isinstance(directory, DirectoryPort)
    assert directory.name == "onprem_ad"


def test_lookup_goes_through_entra_to_ad(
    directory: OnPremAdDirectory, hybrid: HybridTenant, dc1: SambaDC
) -> None:
    policy = policy_for(hybrid, seed.LIC_VISIO)
    assert directory.is_member(policy=policy, user=seed.ALICE.upn)
    assert directory.group_for(policy).sid == dc1.template.sid(seed.LIC_VISIO.dn)
    steps = directory.log.drain()
    assert [s.step for s in steps] == [
        "graph.get_user",
        "ldap.find_user_by_sam",
        "graph.get_group",
        "ldap.find_group_by_sid",
        "ldap.is_direct_member",
    ]
    assert steps[1].input == "alice" and steps[-1].outcome == "member"
    assert all(s.policy == "LIC-Visio" and s.ms >= 0 for s in steps)
    # The group is resolved once per policy; the user on every call.
    assert not directory.is_member(policy=policy, user=seed.ERIN.upn)
    assert "graph.get_group" not in _names(directory)


def test_escaped_names_resolve(directory: OnPremAdDirectory, hybrid: HybridTenant) -> None:
    """A SAM with parentheses and a CN with a comma (filter and DN escaping)."""
    assert directory.is_member(policy=policy_for(hybrid, seed.LIC_VISIO), user=seed.PAT.upn)


def test_renamed_sam_falls_back_to_the_sid(
    directory: OnPremAdDirectory, hybrid: HybridTenant
) -> None:
    hybrid.tenant.find_user(seed.ALICE.upn).on_premises_sam_account_name = "alice-renamed"  # type: ignore[union-attr]
    assert directory.is_member(policy=policy_for(hybrid, seed.LIC_VISIO), user=seed.ALICE.upn)
    steps = {s.step: s.outcome for s in directory.log.drain()}
    assert steps["ldap.find_user_by_sam"].startswith("NotFound")
    assert steps["ldap.find_user_by_sid"] == "ok"


def test_sid_mismatch_is_refused(
    directory: OnPremAdDirectory, hybrid: HybridTenant, dc1: SambaDC
) -> None:
    """Entra's SAM names an AD account whose SID is another person's: never act on it."""
    bob = hybrid.tenant.find_user(seed.BOB.upn)
    assert bob is not None
    bob.on_premises_security_identifier = dc1.template.sid(seed.ALICE.dn)
    with pytest.raises(Rejected) as caught:
        directory.is_member(policy=policy_for(hybrid, seed.LIC_VISIO), user=seed.BOB.upn)
    assert caught.value.code == "sid-mismatch"


def test_unknown_user_is_not_found(directory: OnPremAdDirectory, hybrid: HybridTenant) -> None:
    with pytest.raises(NotFound):
        directory.is_member(
            policy=policy_for(hybrid, seed.LIC_VISIO), user="nobody@corp.example.test"
        )


def test_cloud_only_group_is_refused(directory: OnPremAdDirectory, hybrid: HybridTenant) -> None:
    cloud = hybrid.tenant.add_group("Cloud Only")
    policy = policy_for(hybrid, seed.LIC_VISIO).model_copy(
        update={
            "group": policy_for(hybrid, seed.LIC_VISIO).group.model_copy(
                update={"entra_id": cloud.id}
            )
        }
    )
    with pytest.raises(Rejected) as caught:
        directory.is_member(policy=policy, user=seed.ALICE.upn)
    assert caught.value.code == "not-synced"


def test_nested_membership_is_not_direct(
    directory: OnPremAdDirectory, hybrid: HybridTenant, admin: Connection
) -> None:
    policy = policy_for(hybrid, seed.LIC_PROJECT)
    assert not directory.is_member(policy=policy, user=seed.CAROL.upn)  # via Team-PMs
    with pytest.raises(Rejected) as caught:
        directory.remove_member(policy=policy, user=seed.CAROL.upn, idempotency_key="k-nested")
    assert caught.value.code == "nested-only"
    assert seed.TEAM_PMS.dn.lower() in direct_members(admin, seed.LIC_PROJECT.dn)


def test_remove_awaits_sync_then_sync_confirms(
    directory: OnPremAdDirectory, hybrid: HybridTenant, admin: Connection
) -> None:
    policy = policy_for(hybrid, seed.LIC_VISIO)
    outcome = directory.remove_member(policy=policy, user=seed.BOB.upn, idempotency_key="k-bob")
    assert outcome is RemoveOutcome.AWAITING_SYNC
    assert seed.BOB.dn.lower() not in direct_members(admin, seed.LIC_VISIO.dn)
    steps = directory.log.drain()
    removal = next(s for s in steps if s.step == "ldap.remove_member")
    assert "k-bob" in removal.input and removal.outcome == "ok"
    assert steps[-1].step == "ldap.verify_removed" and steps[-1].outcome == "not_member"

    # Entra ID still lists Bob until directory sync runs.
    assert not directory.sync_confirmed(policy=policy, user=seed.BOB.upn)
    assert directory.log.drain()[-1].outcome == "still_listed"
    assert run_directory_sync(hybrid, admin, seed.LIC_VISIO.dn) == (0, 1)
    assert directory.sync_confirmed(policy=policy, user=seed.BOB.upn)
    assert directory.log.drain()[-1].outcome == "synced"

    # A retry of the same removal (the outcome was lost) reads as already done.
    with pytest.raises(AlreadyDone):
        directory.remove_member(policy=policy, user=seed.BOB.upn, idempotency_key="k-bob")


def test_remove_of_a_non_member_is_already_done(
    directory: OnPremAdDirectory, hybrid: HybridTenant, admin: Connection
) -> None:
    before = direct_members(admin, seed.LIC_VISIO.dn)
    with pytest.raises(AlreadyDone):
        directory.remove_member(
            policy=policy_for(hybrid, seed.LIC_VISIO), user=seed.ERIN.upn, idempotency_key="k-e"
        )
    assert direct_members(admin, seed.LIC_VISIO.dn) == before
    # The steps that led to the outcome are recorded even though the call raised.
    assert _names(directory)[-1] == "ldap.is_nested_member"


def test_restore_puts_the_member_back(
    directory: OnPremAdDirectory, hybrid: HybridTenant, admin: Connection
) -> None:
    policy = policy_for(hybrid, seed.LIC_VISIO)
    directory.remove_member(policy=policy, user=seed.ALICE.upn, idempotency_key="k-a")
    directory.add_member(policy=policy, user=seed.ALICE.upn, idempotency_key="k-a-restore")
    assert seed.ALICE.dn.lower() in direct_members(admin, seed.LIC_VISIO.dn)
    assert _names(directory)[-2:] == ["ldap.add_member", "ldap.verify_added"]
    with pytest.raises(AlreadyDone):
        directory.add_member(policy=policy, user=seed.ALICE.upn, idempotency_key="k-a-restore")


def test_dry_run_refuses_and_changes_nothing(
    make_directory: Make, hybrid: HybridTenant, admin: Connection
) -> None:
    dry = make_directory(dry_run=True)
    policy = policy_for(hybrid, seed.LIC_VISIO)
    before = direct_members(admin, seed.LIC_VISIO.dn)
    with pytest.raises(WriteRefused):
        dry.remove_member(policy=policy, user=seed.BOB.upn, idempotency_key="k-dry")
    with pytest.raises(WriteRefused):
        dry.add_member(policy=policy, user=seed.ERIN.upn, idempotency_key="k-dry-add")
    assert direct_members(admin, seed.LIC_VISIO.dn) == before
    assert dry.log.drain()[-1].outcome.startswith("WriteRefused")


def test_kill_switch_refuses(
    make_settings: Callable[..., LdapSettings],
    graph: GraphClient,
    hybrid: HybridTenant,
    admin: Connection,
) -> None:
    with LdapConnector(make_settings(), writes_allowed=lambda: False) as ldap:
        paused = OnPremAdDirectory(ldap=ldap, graph=graph)
        with pytest.raises(WriteRefused):
            paused.remove_member(
                policy=policy_for(hybrid, seed.LIC_VISIO), user=seed.BOB.upn, idempotency_key="k"
            )
    assert seed.BOB.dn.lower() in direct_members(admin, seed.LIC_VISIO.dn)


@pytest.mark.parametrize("ref", ["ad_dn", "ad_sid"])
def test_ad_group_named_directly_without_graph(
    make_directory: Make, hybrid: HybridTenant, dc1: SambaDC, ref: str
) -> None:
    values = {
        "ad_dn": seed.LIC_VISIO.dn,
        "ad_sid": dc1.template.sid(seed.LIC_VISIO.dn),
    }
    steps: list[Step] = []
    ad_only = make_directory(with_graph=False)
    ad_only.log._on_step = steps.append  # the callback form of the step contract
    policy = policy_for(hybrid, seed.LIC_VISIO, **{ref: values[ref]})
    assert ad_only.is_member(policy=policy, user=seed.ALICE.upn)
    assert steps[0].step == "ldap.find_user_by_upn"
    assert not any(s.step.startswith("graph.") for s in steps)
    # Nothing to watch in Entra ID: the sync check says so instead of waiting forever.
    assert ad_only.sync_confirmed(policy=policy, user=seed.ALICE.upn)
    assert steps[-1].outcome.startswith("skipped")
