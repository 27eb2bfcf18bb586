"""Proposed configuration for campaign channels (not yet wired into ``reclaim.yaml``).

These models follow ``reclaim.config``'s rules (unknown keys are errors, secrets are
references) and are meant to be embedded there: :class:`CampaignSettings` as a
top-level ``campaigns:`` key, :class:`PolicyMessaging` inside each policy's
``campaign:``. Until then the runner can build them directly.

```yaml
campaigns:
  base_url: https://reclaim.corp.example        # where employees open their links
  token_keys: [env:RECLAIM_LINK_KEY, env:RECLAIM_LINK_KEY_OLD]   # first signs
  org_name: Contoso IT
  support_contact: it-help@corp.example
  quiet_hours: {start: "19:00", end: "08:00", skip_weekends: true}
  email: {rate_per_second: 0.5, ca_file: /etc/ssl/corp-ca.pem}
  slack: {token: env:SLACK_BOT_TOKEN}
policies:
  - name: Visio
    campaign:
      channels: [teams, email]
      messaging:
        sender: {name: Contoso software team, address: licenses@corp.example}
        teams_webhook_url: env:VISIO_TEAMS_WORKFLOW_URL
        template_dir: /etc/reclaim/templates/visio
```
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from reclaim.campaigns.model import Sender
from reclaim.campaigns.tokens import TokenKeys
from reclaim.config import Secret
from reclaim.domain.policy import Strict

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


class CampaignSettings(Strict):
    """Everything campaigns share across policies (proposed top-level ``campaigns:``)."""

    base_url: str
    token_keys: Annotated[tuple[Secret, ...], Field(min_length=1)]
    org_name: str | None = None
    support_contact: str | None = None
    template_dir: str | None = None
    max_items_per_message: Annotated[int, Field(ge=1, le=10)] = 10
    quiet_hours: QuietHours = QuietHours()
    email: EmailChannelSettings = EmailChannelSettings()
    teams: TeamsChannelSettings = TeamsChannelSettings()
    slack: SlackChannelSettings | None = None

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


class PolicyMessaging(Strict):
    """Per-policy messaging (proposed ``policies[].campaign.messaging``)."""

    sender: SenderSettings | None = None
    teams_webhook_url: Secret | None = None
    template_dir: str | None = None
