"""Configuration errors name the file, line, key path and problem; secrets stay hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from reclaim.config import ConfigError, load_settings, parse_settings
from reclaim.secrets import SecretRef

GOOD_POLICY = """\
policies:
  - name: Visio
    apps: [VISIO.EXE, Microsoft Visio]
    group: {entra_id: 0f1e2d3c-0000-4000-8000-000000000001}
    workflow: entra_id
    seat_cost: {amount: 15, currency: USD}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_settings(text, source="reclaim.yaml", check_secrets=True)
    return info.value.problems


def test_valid_policy_gets_documented_defaults() -> None:
    settings = parse_settings(GOOD_POLICY, source="reclaim.yaml")
    p = settings.policy("visio")
    assert (p.unused_days, p.grace_days, p.ask_permission) == (30, 14, True)
    assert p.campaign.on_no_response == "keep"
    assert p.caps.max_per_run == 50
    assert p.app_keys() == {"visio.exe", "microsoft visio"}


def test_unknown_key_is_an_error_with_line_and_path() -> None:
    text = GOOD_POLICY + "    colour: red\n"
    assert problems(text) == [
        "reclaim.yaml:7: policies[0].colour: unknown key (check the spelling; "
        "unknown keys are not ignored)"
    ]


def test_bad_type_names_key_and_value() -> None:
    text = GOOD_POLICY + "    unused_days: soon\n"
    assert problems(text) == [
        "reclaim.yaml:7: policies[0].unused_days: Input should be a valid integer, "
        "unable to parse string as an integer (got 'soon')"
    ]


def test_error_in_third_policy_is_located() -> None:
    extra = GOOD_POLICY.split("\n", 1)[1]
    text = (
        GOOD_POLICY
        + extra.replace("name: Visio", "name: P2")
        + extra.replace("name: Visio", "name: P3").replace("amount: 15", "amount: -1")
    )
    assert problems(text) == [
        "reclaim.yaml:16: policies[2].seat_cost.amount: Input should be greater than or "
        "equal to 0 (got -1)"
    ]


def test_missing_secret_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECLAIM_TEST_GRAPH_SECRET", raising=False)
    text = (
        "entra:\n  tenant_id: t\n  client_id: c\n  client_secret: env:RECLAIM_TEST_GRAPH_SECRET\n"
    )
    assert problems(text) == [
        "reclaim.yaml:4: entra.client_secret: environment variable "
        "RECLAIM_TEST_GRAPH_SECRET is not set"
    ]
    monkeypatch.setenv("RECLAIM_TEST_GRAPH_SECRET", "s3cr3t-value")
    settings = parse_settings(text, source="reclaim.yaml", check_secrets=True)
    assert settings.entra is not None
    assert settings.entra.client_secret == SecretRef("env", "RECLAIM_TEST_GRAPH_SECRET")
    assert "s3cr3t-value" not in repr(settings)


def test_secret_written_in_the_file_is_refused_without_echoing_it() -> None:
    text = "entra:\n  tenant_id: t\n  client_id: c\n  client_secret: hunter2-literal\n"
    found = problems(text)
    assert len(found) == 1
    assert found[0].startswith("reclaim.yaml:4: entra.client_secret: must be a secret reference")
    assert "hunter2-literal" not in found[0]


def test_secret_file_reference(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("ldap-password\n")
    text = (
        "ldap:\n  hosts: [dc1.corp.example.test]\n  base_dn: DC=corp\n"
        f"  bind_user: svc@corp\n  bind_password: file:{secret}\n"
    )
    settings = parse_settings(text, source="reclaim.yaml", check_secrets=True)
    assert settings.ldap is not None
    assert settings.ldap.bind_password.resolve() == "ldap-password"
    missing = text.replace(str(secret), str(tmp_path / "nope"))
    assert problems(missing)[0].startswith("reclaim.yaml:5: ldap.bind_password: secret file ")


def test_yaml_syntax_error_has_a_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings("policies:\n  - name: [unclosed\n", source="reclaim.yaml")
    assert info.value.source == "reclaim.yaml:3"
    assert info.value.problems == ["not valid YAML: expected ',' or ']', but got '<stream end>'"]


def test_workflow_needs_matching_group_reference() -> None:
    text = GOOD_POLICY.replace("workflow: entra_id", "workflow: entra_id").replace(
        "{entra_id: 0f1e2d3c-0000-4000-8000-000000000001}", "{name: Visio users}"
    )
    assert problems(text) == [
        "reclaim.yaml:2: policies[0]: workflow entra_id needs group.entra_id "
        "(the group's object id)"
    ]


def test_duplicate_policy_names_are_refused() -> None:
    text = GOOD_POLICY + GOOD_POLICY.split("\n", 1)[1].replace("name: Visio", "name: VISIO")
    assert problems(text) == [
        "reclaim.yaml:1: policies: policy name 'VISIO' is used twice (names are case-insensitive)"
    ]


def test_reminder_after_timeout_is_refused() -> None:
    text = GOOD_POLICY + "    campaign: {response_timeout_days: 5, reminder_days: [3, 6]}\n"
    assert problems(text) == [
        "reclaim.yaml:7: policies[0].campaign: reminder_days [6] fall on or after "
        "response_timeout_days (5): such a reminder would never be sent"
    ]


def test_database_url_override_and_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RECLAIM_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("RECLAIM_DATABASE_URL", raising=False)
    settings = parse_settings("", source="reclaim.yaml")
    assert settings.database_url() == f"sqlite:///{tmp_path / 'reclaim.db'}"
    monkeypatch.setenv("RECLAIM_DATABASE_URL", "postgresql://u@db/reclaim")
    assert settings.database_url() == "postgresql+psycopg://u@db/reclaim"


def test_missing_file_and_env_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "absent.yaml")
    path = tmp_path / "reclaim.yaml"
    path.write_text(GOOD_POLICY)
    monkeypatch.setenv("RECLAIM_CONFIG", str(path))
    assert load_settings().policies[0].name == "Visio"
