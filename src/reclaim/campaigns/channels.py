"""The channel objects a campaign sends through, built from the settings on first use.

One :class:`~reclaim.connectors.email.SmtpChannel` for everyone (it keeps its SMTP
connection and its pace); one Teams channel per webhook URL and one Slack channel per
bot token, so a policy with its own webhook or token gets its own. A channel that is
not configured is None: :func:`reclaim.campaigns.delivery.deliver` then skips it and
falls back to email.
"""

from __future__ import annotations

from reclaim.campaigns.delivery import Channel
from reclaim.campaigns.pacing import Pacer
from reclaim.campaigns.settings import CampaignSettings
from reclaim.config import Settings
from reclaim.connectors.email import SmtpChannel, SmtpOptions
from reclaim.connectors.slack import SlackChannel
from reclaim.connectors.teams import TeamsWebhookChannel
from reclaim.domain.policy import Policy


class ChannelSet:
    """``channels(name, policy)``: the channel ``name`` as configured for ``policy``."""

    def __init__(self, settings: Settings, campaigns: CampaignSettings) -> None:
        self.settings = settings
        self.campaigns = campaigns
        self._email: SmtpChannel | None = None
        self._teams: dict[str, TeamsWebhookChannel] = {}
        self._slack: dict[str, SlackChannel] = {}

    def __call__(self, name: str, policy: Policy) -> Channel | None:
        if name == "email":
            return self.email()
        if name == "teams":
            return self.teams(policy)
        if name == "slack":
            return self.slack(policy)
        return None

    def email(self) -> SmtpChannel | None:
        """The mail channel, or None without an ``smtp:`` section."""
        if self.settings.smtp is None:
            return None
        if self._email is None:
            e = self.campaigns.email
            options = SmtpOptions.from_settings(
                self.settings.smtp,
                sender_name=e.sender_name,
                ca_file=e.ca_file,
                timeout=e.timeout_seconds,
                rate_per_second=e.rate_per_second,
                reply_to=e.reply_to,
            )
            self._email = SmtpChannel(options)
        return self._email

    def teams(self, policy: Policy) -> TeamsWebhookChannel | None:
        """The policy's Teams webhook channel (its own URL, else the shared one)."""
        t = self.campaigns.teams
        ref = self.campaigns.for_policy(policy.name).teams_webhook_url or t.webhook_url
        if ref is None:
            return None
        key = str(ref)
        if key not in self._teams:
            self._teams[key] = TeamsWebhookChannel(
                webhook_url=ref.resolve,
                timeout=t.timeout_seconds,
                pacer=Pacer(t.rate_per_second),
                recipient_field=t.recipient_field,
                allow_channel_webhook=t.allow_channel_webhook,
                verify=t.ca_file or True,
            )
        return self._teams[key]

    def slack(self, policy: Policy) -> SlackChannel | None:
        """The policy's Slack channel (its own bot token, else the shared one)."""
        s = self.campaigns.slack
        ref = self.campaigns.for_policy(policy.name).slack_token or (s.token if s else None)
        if ref is None:
            return None
        key = str(ref)
        if key not in self._slack:
            self._slack[key] = SlackChannel(
                token=ref.resolve,
                base_url=s.base_url if s else "https://slack.com/api/",
                timeout=float(s.timeout_seconds if s else 10),
                pacer=Pacer(s.rate_per_second if s else 1.0),
                ca_file=s.ca_file if s else None,
            )
        return self._slack[key]

    def close(self) -> None:
        """Close the SMTP connection and the HTTP clients."""
        if self._email is not None:
            self._email.close()
        for teams in self._teams.values():
            teams.close()
