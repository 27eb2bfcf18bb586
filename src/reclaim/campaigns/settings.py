"""Campaign configuration: the top-level ``campaigns:`` section of ``reclaim.yaml``.

These models follow ``reclaim.config``'s rules (unknown keys are errors, secrets are
references); ``reclaim.config.Settings`` embeds :class:`CampaignSettings` as
``campaigns:``. Per-policy messaging (sender, Teams webhook, Slack token, templates)
lives under ``campaigns.policies.<policy name>`` so the policy model itself (stored
with every case) stays free of channel credentials. ``reminder_days`` and
``response_timeout_days`` here are defaults for policies that do not set their own in
``policies[].campaign``.

```yaml
campaigns:
  base_url: https://reclaim.corp.example        # where employees open their links
  token_keys: [env:RECLAIM_LINK_KEY, env:RECLAIM_LINK_KEY_OLD]   # first signs
  org_name: Contoso IT
  support_contact: it-help@corp.example
  timezone: Europe/Paris                        # default: the top-level timezone
  quiet_hours: {start: "19:00", end: "08:00", skip_weekends: true}
  reminder_days: [3, 6]                         # defaults for policies without their own
  response_timeout_days: 10
  restore_window_days: 14                       # "I need it back" after a release; 0: off
  email: {rate_per_second: 0.5, ca_file: /etc/ssl/corp-ca.pem}
  slack: {token: env:SLACK_BOT_TOKEN}
  policies:
    Visio:                                      # a policy name from policies:
      sender: {name: Contoso software team, address: licenses@corp.example}
      teams_webhook_url: env:VISIO_TEAMS_WORKFLOW_URL
      template_dir: /etc/reclaim/templates/visio
policies:
  - name: Visio
    campaign: {channels: [teams, email]}
```
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from reclaim.campaigns.model import Sender
from reclaim.campaigns.tokens import TokenKeys
from reclaim.domain.policy import Campaign, Policy, Strict
from reclaim.secrets import Secret, SecretRef

Rate = Annotated[float, Field(gt=0, le=100)]
Timeout = Annotated[float, Field(gt=0, le=300)]


def is_loopback_host(host: str | None) -> bool:
    """True for localhost and loopback addresses (where plain HTTP/SMTP is acceptable)."""
    if not host:
        return False
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class QuietHours(Strict):
    """No messages between ``start`` and ``end`` (local time; may wrap midnight)."""

    start: dt.time = dt.time(19, 0)
    end: dt.time = dt.time(8, 0)
    skip_weekends: bool = True
    weekend: tuple[Annotated[int, Field(ge=0, le=6)], ...] = (5, 6)  # date.weekday()


class SenderSettings(Strict):
    """The From of campaign mail for one policy."""

    address: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]
    name: str | None = None

    def to_sender(self) -> Sender:
        """The value the message builders take."""
        return Sender(address=self.address, name=self.name)


class EmailChannelSettings(Strict):
    """Campaign mail beyond ``smtp:`` (which holds host, port, security, credentials)."""

    rate_per_second: Rate = 0.5  # Exchange Online allows 30 messages a minute per mailbox
    timeout_seconds: Timeout = 30.0
    ca_file: str | None = None
    reply_to: str | None = None
    sender_name: str | None = None  # display name for smtp.sender when a policy sets none


class TeamsChannelSettings(Strict):
    """Teams delivery through a Workflows webhook (one per policy, or this default)."""

    webhook_url: Secret | None = None  # the URL carries its own signature: a credential
    recipient_field: str | None = "recipient"
    rate_per_second: Rate = 1.0
    timeout_seconds: Timeout = 10.0
    ca_file: str | None = None
    allow_channel_webhook: bool = False


class SlackChannelSettings(Strict):
    """Slack delivery with a bot token (scopes: chat:write, users:read, users:read.email)."""

    token: Secret
    base_url: str = "https://slack.com/api/"
    rate_per_second: Rate = 1.0
    timeout_seconds: Annotated[int, Field(gt=0, le=300)] = 10
    ca_file: str | None = None


class PolicyMessaging(Strict):
    """Per-policy messaging (``campaigns.policies.<policy name>``)."""

    sender: SenderSettings | None = None
    teams_webhook_url: Secret | None = None
    slack_token: Secret | None = None  # default: campaigns.slack.token
    template_dir: str | None = None


class CampaignSettings(Strict):
    """Everything campaigns share across policies (top-level ``campaigns:``)."""

    base_url: str
    token_keys: Annotated[tuple[Secret, ...], Field(min_length=1)]
    org_name: str | None = None
    support_contact: str | None = None
    template_dir: str | None = None
    timezone: str | None = None  # people whose zone is unknown; default: top-level timezone
    max_items_per_message: Annotated[int, Field(ge=1, le=10)] = 10
    quiet_hours: QuietHours = QuietHours()
    reminder_days: tuple[Annotated[int, Field(gt=0)], ...] | None = None  # default (3, 6)
    response_timeout_days: Annotated[int, Field(gt=0, le=365)] | None = None  # default 10
    restore_window_days: Annotated[int, Field(ge=0, le=365)] = 14
    token_lifetime_days: Annotated[int, Field(gt=0, le=365)] | None = None  # else: deadline
    email: EmailChannelSettings = EmailChannelSettings()
    teams: TeamsChannelSettings = TeamsChannelSettings()
    slack: SlackChannelSettings | None = None
    policies: dict[str, PolicyMessaging] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError("not a known IANA time zone (such as Europe/Paris)") from None
        return v

    @field_validator("base_url")
    @classmethod
    def _https(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must be an absolute URL such as https://reclaim.corp.example")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            # The links are bearer credentials: over plain HTTP anyone on the path
            # could read one and answer in the person's name.
            raise ValueError("must use https:// (plain http is allowed only for localhost)")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        return v.rstrip("/")

    def keys(self) -> TokenKeys:
        """Resolve ``token_keys`` (raises SecretError if one is missing)."""
        return TokenKeys.from_secrets(self.token_keys)

    def for_policy(self, name: str) -> PolicyMessaging:
        """The messaging overrides of policy ``name`` (case-insensitive), or none."""
        for key, value in self.policies.items():
            if key.lower() == name.lower():
                return value
        return PolicyMessaging()

    def secret_refs(self) -> Iterator[tuple[str, SecretRef]]:
        """Every secret reference in this section, with its key path under ``campaigns``."""
        for i, ref in enumerate(self.token_keys):
            yield f"campaigns.token_keys[{i}]", ref
        if self.teams.webhook_url is not None:
            yield "campaigns.teams.webhook_url", self.teams.webhook_url
        if self.slack is not None:
            yield "campaigns.slack.token", self.slack.token
        for name, messaging in self.policies.items():
            for field_name in ("teams_webhook_url", "slack_token"):
                ref = getattr(messaging, field_name)
                if ref is not None:
                    yield f"campaigns.policies.{name}.{field_name}", ref


def policy_campaign_problems(
    campaigns: CampaignSettings, policies: tuple[Policy, ...]
) -> tuple[tuple[Policy, ...], list[InitErrorDetails]]:
    """Check ``campaigns.policies`` names against ``policies`` and apply the campaign
    defaults (``reminder_days``, ``response_timeout_days``) to policies that do not set
    their own. Returns the policies to use and the problems, located by key path."""
    known = {p.name.lower() for p in policies}
    problems: list[InitErrorDetails] = []
    for name in campaigns.policies:
        if name.lower() not in known:
            listed = ", ".join(p.name for p in policies) or "none configured"
            problems.append(
                InitErrorDetails(
                    type=PydanticCustomError(
                        "unknown_policy",
                        "names no configured policy (known: {known})",
                        {"known": listed},
                    ),
                    loc=("campaigns", "policies", name),
                    input=name,
                )
            )
    defaults: dict[str, Any] = {}
    if campaigns.reminder_days is not None:
        defaults["reminder_days"] = campaigns.reminder_days
    if campaigns.response_timeout_days is not None:
        defaults["response_timeout_days"] = campaigns.response_timeout_days
    out: list[Policy] = []
    for i, policy in enumerate(policies):
        unset = {k: v for k, v in defaults.items() if k not in policy.campaign.model_fields_set}
        if not unset:
            out.append(policy)
            continue
        merged = {**policy.campaign.model_dump(exclude_unset=True), **unset}
        try:
            campaign = Campaign.model_validate(merged)
        except ValidationError as exc:
            problems.extend(
                InitErrorDetails(
                    type=PydanticCustomError(
                        "campaign_defaults",
                        "with the defaults from campaigns: {msg}",
                        {"msg": err["msg"].removeprefix("Value error, ")},
                    ),
                    loc=("policies", i, "campaign", *err["loc"]),
                    input=merged,
                )
                for err in exc.errors()
            )
            continue
        out.append(policy.model_copy(update={"campaign": campaign}))
    return tuple(out), problems
