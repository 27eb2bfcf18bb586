"""The ``campaigns:`` section of reclaim.yaml: validation, locations, defaults."""

from __future__ import annotations

import pytest

from reclaim.config import ConfigError, parse_settings

POLICIES = """\
policies:
  - name: Visio
    apps: [VISIO.EXE]
    group: {name: Visio users}
    workflow: manual
    seat_cost: {amount: "15"}
  - name: Miro
    apps: [MIRO.EXE]
    group: {name: Miro users}
    workflow: manual
    seat_cost: {amount: "8"}
    campaign: {reminder_days: [1], response_timeout_days: 5}
"""


def parse(campaigns: str):
    return parse_settings("campaigns:\n" + campaigns + POLICIES, source="r.yaml")


def problems(campaigns: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(campaigns)
    return caught.value.problems


BASE = "  base_url: https://reclaim.corp.example\n  token_keys: [env:LINK_KEY]\n"


def test_a_full_section_parses_with_per_policy_messaging() -> None:
    settings = parse(
        BASE
        + "  timezone: Europe/Paris\n"
        + "  restore_window_days: 30\n"
        + "  slack: {token: env:SLACK_TOKEN}\n"
        + "  policies:\n"
        + "    visio:\n"  # policy names are case-insensitive
        + "      sender: {name: Software team, address: licenses@corp.example}\n"
        + "      teams_webhook_url: file:/run/secrets/visio-hook\n"
        + "      slack_token: env:VISIO_SLACK\n"
    )
    campaigns = settings.campaigns
    assert campaigns is not None and campaigns.restore_window_days == 30
    messaging = campaigns.for_policy("Visio")
    assert messaging.sender is not None and messaging.sender.to_sender().name == "Software team"
    assert campaigns.for_policy("Miro").sender is None
    assert dict(settings.secret_refs()).keys() == {
        "campaigns.token_keys[0]",
        "campaigns.slack.token",
        "campaigns.policies.visio.teams_webhook_url",
        "campaigns.policies.visio.slack_token",
    }


def test_unknown_keys_are_errors_with_line_and_key_path() -> None:
    found = problems(BASE + "  policies:\n    Visio:\n      sendr: {address: a@b.example}\n")
    assert found == [
        "r.yaml:6: campaigns.policies.Visio.sendr: unknown key (check the spelling; "
        "unknown keys are not ignored)"
    ]
    assert problems(BASE + "  quiet_hour: {start: '20:00'}\n")[0].startswith(
        "r.yaml:4: campaigns.quiet_hour: unknown key"
    )


def test_overrides_for_a_policy_that_does_not_exist_are_refused() -> None:
    found = problems(BASE + "  policies:\n    Visoi:\n      template_dir: /x\n")
    assert found == [
        "r.yaml:5: campaigns.policies.Visoi: names no configured policy (known: Visio, Miro) "
        "(got 'Visoi')"
    ]


def test_campaign_defaults_fill_in_only_what_a_policy_leaves_out() -> None:
    settings = parse(BASE + "  reminder_days: [2, 4]\n  response_timeout_days: 7\n")
    visio, miro = settings.policies
    assert (visio.campaign.reminder_days, visio.campaign.response_timeout_days) == ((2, 4), 7)
    assert (miro.campaign.reminder_days, miro.campaign.response_timeout_days) == ((1,), 5)


def test_defaults_that_clash_with_a_policy_name_the_policy() -> None:
    assert parse(BASE + "  reminder_days: [6]\n").policies[0].campaign.reminder_days == (6,)
    found = problems(BASE + "  response_timeout_days: 4\n")  # Visio's reminders (3, 6)
    assert len(found) == 1 and found[0].startswith("r.yaml:") and "policies[0].campaign" in found[0]
    assert "fall on or after response_timeout_days (4)" in found[0]


def test_plain_http_links_only_for_loopback_and_zones_must_exist() -> None:
    insecure = problems("  base_url: http://reclaim.corp.example\n  token_keys: [env:K]\n")
    assert "must use https://" in insecure[0] and insecure[0].startswith(
        "r.yaml:2: campaigns.base_url"
    )
    zone = problems(BASE + "  timezone: Mars/Olympus\n")
    assert "not a known IANA time zone" in zone[0]
    secret = problems("  base_url: https://r.example\n  token_keys: [plain-secret-text]\n")
    assert "plain-secret-text" not in secret[0]
