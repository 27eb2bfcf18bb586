"""The onprem_ad factory: safety settings reach both connectors (no peers needed)."""

from __future__ import annotations

import pytest

from reclaim.config import EntraSettings, LdapSettings, SafetySettings, Settings
from reclaim.connectors.errors import WriteRefused
from reclaim.domain.policy import GroupRef, Policy, SeatCost, Workflow
from reclaim.workflows.onprem_ad import OnPremAdDirectory, onprem_ad_directory_factory

POLICY = Policy(
    name="Visio",
    apps=("visio",),
    group=GroupRef(ad_dn="CN=LIC-Visio,DC=corp,DC=example,DC=test"),
    workflow=Workflow.ONPREM_AD,
    seat_cost=SeatCost(amount=10),  # type: ignore[arg-type]
)


def _settings(**safety: bool) -> Settings:
    return Settings(
        safety=SafetySettings.model_validate(safety),
        ldap=LdapSettings(
            hosts=("127.0.0.1",),
            base_dn="DC=corp,DC=example,DC=test",
            bind_user="svc@corp.example.test",
            bind_password="env:RECLAIM_TEST_UNUSED_LDAP_PASSWORD",  # type: ignore[arg-type]
        ),
        entra=EntraSettings(
            tenant_id="0d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6",
            client_id="6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d",
            client_secret="env:RECLAIM_TEST_UNUSED_SECRET",  # type: ignore[arg-type]
        ),
    )


def test_one_shared_adapter_for_all_onprem_policies() -> None:
    pick = onprem_ad_directory_factory(_settings())
    first = pick(POLICY)
    assert isinstance(first, OnPremAdDirectory)
    assert pick(POLICY.model_copy(update={"name": "Other"})) is first
    assert first.graph is not None
    with pytest.raises(ValueError, match="manual"):
        pick(POLICY.model_copy(update={"workflow": Workflow.MANUAL}))


@pytest.mark.parametrize("safety", [{"dry_run": True}, {"paused": True}])
def test_dry_run_and_pause_refuse_before_connecting(safety: dict[str, bool]) -> None:
    """Nothing listens on 127.0.0.1:636 here: a refusal proves nothing was attempted."""
    directory = onprem_ad_directory_factory(_settings(**safety))(POLICY)
    assert isinstance(directory, OnPremAdDirectory)
    with pytest.raises(WriteRefused):
        directory.ldap.remove_member(group_dn="CN=G,DC=x", user_dn="CN=U,DC=x")


def test_runtime_kill_switch_is_read_at_each_write() -> None:
    switch = {"open": False}
    pick = onprem_ad_directory_factory(_settings(), writes_allowed=lambda: switch["open"])
    directory = pick(POLICY)
    assert isinstance(directory, OnPremAdDirectory)
    with pytest.raises(WriteRefused, match="paused"):
        directory.ldap.add_member(group_dn="CN=G,DC=x", user_dn="CN=U,DC=x")


def test_without_ldap_settings_the_first_use_says_why() -> None:
    pick = onprem_ad_directory_factory(Settings())
    with pytest.raises(ValueError, match="ldap:"):
        pick(POLICY)
