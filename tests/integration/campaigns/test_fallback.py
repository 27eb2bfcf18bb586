"""deliver() over real channels: Teams/Slack failing over to mail on a real SMTP server."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

import pytest

from reclaim.campaigns.delivery import DeliveryStatus, deliver
from reclaim.connectors.email import SmtpChannel, SmtpOptions
from reclaim.connectors.slack import SlackChannel
from reclaim.connectors.teams import TeamsWebhookChannel
from tests.integration.campaigns.conftest import Reply, free_port
from tests.integration.campaigns.test_slack import LOOKUP, POST, TOKEN, lookup
from tests.unit.campaigns.factories import SENDER, ask, three_items

HOOK = "/workflow"


@pytest.fixture
def mail(smtp_server):
    peer = smtp_server()
    options = SmtpOptions(host=peer.host, port=peer.port, security="none", sender=SENDER)
    with SmtpChannel(options) as channel:
        yield peer, channel


def teams(peer, timeout: float = 5.0) -> TeamsWebhookChannel:
    return TeamsWebhookChannel(webhook_url=peer.url + HOOK, timeout=timeout)


def slack(peer) -> SlackChannel:
    return SlackChannel(token=TOKEN, base_url=f"{peer.url}/api/")


def test_teams_accepts_so_no_mail_is_sent(http_peer, mail):
    peer, email = mail
    http_peer.on(HOOK, Reply(202))
    result = deliver(ask(), [teams(http_peer)], fallback=email)
    assert result.channel == "teams"
    assert peer.recorder.messages == []


@pytest.mark.parametrize(
    ("reply", "timeout"),
    [(Reply(500, "Internal Server Error"), 5.0), (Reply(202, delay=1.0), 0.2)],
    ids=["http-500", "timeout"],
)
def test_teams_failing_falls_back_to_email(http_peer, mail, reply, timeout):
    peer, email = mail
    http_peer.on(HOOK, reply)
    message = ask(*three_items())
    result = deliver(message, [teams(http_peer, timeout)], fallback=email)
    assert result.status is DeliveryStatus.DELIVERED
    assert result.channel == "email"
    assert [(a.channel, a.outcome) for a in result.attempts] == [
        ("teams", "transient"),
        ("email", "sent"),
    ]
    [got] = peer.recorder.messages
    mail_msg = BytesParser(policy=policy.default).parsebytes(got.data)
    assert mail_msg["Subject"] == message.email.subject


def test_slack_500_falls_back_to_email(http_peer, mail):
    peer, email = mail
    http_peer.on(LOOKUP, lookup)
    http_peer.on(POST, Reply(500, "Internal Server Error"))
    result = deliver(ask(), [slack(http_peer)], fallback=email)
    assert result.channel == "email"
    assert result.attempts[0].code == "slack-500"
    assert len(peer.recorder.messages) == 1


def test_person_not_on_slack_gets_mail(http_peer, mail):
    _, email = mail
    http_peer.on(LOOKUP, Reply(200, {"ok": False, "error": "users_not_found"}))
    result = deliver(ask(), [slack(http_peer), email])
    assert result.channel == "email"
    assert result.attempts[0].outcome == "rejected"
    assert http_peer.to(POST) == []


def test_revoked_slack_token_marks_the_channel_broken_and_mail_goes(http_peer, mail):
    _, email = mail
    http_peer.on(LOOKUP, Reply(200, {"ok": False, "error": "token_revoked"}))
    result = deliver(ask(), [slack(http_peer)], fallback=email)
    assert result.channel == "email"
    assert result.broken_channels == ("slack",)


def test_everything_down_means_retry_later(http_peer):
    http_peer.on(HOOK, Reply(503, "busy", {"Retry-After": "120"}))
    dead_mail = SmtpChannel(
        SmtpOptions(host="127.0.0.1", port=free_port(), security="none", sender=SENDER)
    )
    result = deliver(ask(), [teams(http_peer)], fallback=dead_mail)
    assert result.status is DeliveryStatus.RETRY
    assert result.retry_after == 120.0


def test_unknown_everywhere_is_undeliverable_never_consent(http_peer, smtp_server):
    peer = smtp_server()
    peer.recorder.refuse["alice.martin@corp.example"] = "550 5.1.1 user unknown"
    http_peer.on(LOOKUP, Reply(200, {"ok": False, "error": "users_not_found"}))
    email = SmtpChannel(SmtpOptions(host=peer.host, port=peer.port, security="none", sender=SENDER))
    result = deliver(ask(), [slack(http_peer)], fallback=email)
    assert result.status is DeliveryStatus.UNDELIVERABLE
    assert "550" in result.summary()
