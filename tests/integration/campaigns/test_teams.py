"""The Teams channel against a local HTTP peer standing in for a Workflows webhook."""

from __future__ import annotations

import logging

import httpx
import pytest

from reclaim.campaigns.tokens import peek_case_id, verify
from reclaim.connectors.errors import Rejected, StopRun, Transient
from reclaim.connectors.teams import THROTTLED_IN_BODY, TeamsWebhookChannel
from tests.integration.campaigns.conftest import Reply, free_port
from tests.unit.campaigns.factories import ALICE, KEYS, NOW, ask, three_items

HOOK = "/workflows/abc123/triggers/manual/paths/invoke"
SIGNED = f"{HOOK}?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=TOPSECRETSIG"


def channel(peer, **kw) -> TeamsWebhookChannel:
    return TeamsWebhookChannel(webhook_url=peer.url + SIGNED, timeout=kw.pop("timeout", 5.0), **kw)


def test_posts_the_documented_envelope_with_the_card_and_recipient(http_peer):
    http_peer.on(HOOK, Reply(202))
    message = ask(*three_items())
    sent = channel(http_peer).send(message)
    assert sent.channel == "teams" and "202" in sent.detail

    [request] = http_peer.to(HOOK)
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert request.query["sig"] == ["TOPSECRETSIG"]
    body = request.json()
    assert body == {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": dict(message.teams_card),
            }
        ],
        "recipient": "Alice.Martin@corp.example",
    }
    card = body["attachments"][0]["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    containers = [b for b in card["body"] if b["type"] == "Container"]
    assert [c["items"][0]["text"] for c in containers] == [
        "Adobe Acrobat Pro (final notice)",
        "Miro (reminder)",
        "Microsoft Visio",
    ]
    for container in containers:
        [action_set] = [i for i in container["items"] if i["type"] == "ActionSet"]
        keep, release = action_set["actions"]
        assert keep["type"] == release["type"] == "Action.OpenUrl"
        assert (keep["title"], release["title"]) == ("Keep it", "Release it")
        token = keep["url"].split("/respond/")[1].split("?")[0]
        assert release["url"] == keep["url"].replace("choice=keep", "choice=release")
        verify(token, keys=KEYS, upn=ALICE.upn, purpose="answer", now=NOW)
        assert peek_case_id(token).startswith("case-")


def test_recipient_field_can_be_renamed_or_left_out(http_peer):
    http_peer.on(HOOK, Reply(202))
    channel(http_peer, recipient_field="to").send(ask())
    channel(http_peer, recipient_field=None).send(ask())
    first, second = (r.json() for r in http_peer.to(HOOK))
    assert first["to"] == "Alice.Martin@corp.example" and "recipient" not in first
    assert set(second) == {"type", "attachments"}


@pytest.mark.parametrize(
    ("reply", "kind", "retry_after"),
    [
        (Reply(429, "slow down", {"Retry-After": "7"}), Transient, 7.0),
        (Reply(503, "unavailable"), Transient, None),
        (
            Reply(200, f"Webhook message delivery failed with error: {THROTTLED_IN_BODY}"),
            Transient,
            None,
        ),
        (Reply(400, "Bad payload: attachments[0].content invalid"), Rejected, None),
        (Reply(404, "not found"), StopRun, None),
        (Reply(401, "unauthorized"), StopRun, None),
    ],
)
def test_failures_become_connector_errors(http_peer, reply, kind, retry_after):
    http_peer.on(HOOK, reply)
    with pytest.raises(kind) as info:
        channel(http_peer).send(ask())
    assert type(info.value) is kind
    if kind is Transient:
        assert info.value.retry_after == retry_after
    # The signed URL never appears in what the runner records.
    assert "TOPSECRETSIG" not in info.value.detail and HOOK not in info.value.detail


def test_slow_webhook_times_out_as_transient(http_peer):
    http_peer.on(HOOK, Reply(202, delay=1.0))
    with pytest.raises(Transient) as info:
        channel(http_peer, timeout=0.2).send(ask())
    assert info.value.code == "teams-timeout"


def test_closed_port_is_transient():
    dead = TeamsWebhookChannel(webhook_url=f"http://127.0.0.1:{free_port()}/hook", timeout=1.0)
    with pytest.raises(Transient):
        dead.send(ask())


def test_office_365_connector_webhooks_are_refused_before_sending():
    # They post to a channel, where everyone would see the person's links.
    http = httpx.Client(transport=httpx.MockTransport(lambda r: pytest.fail("sent!")))
    classic = TeamsWebhookChannel(
        webhook_url="https://contoso.webhook.office.com/webhookb2/x/IncomingWebhook/y/z", http=http
    )
    with pytest.raises(StopRun, match="channel"):
        classic.send(ask())


def test_webhook_url_secret_is_redacted_from_http_logs(http_peer, caplog):
    http_peer.on(HOOK, Reply(202))
    caplog.set_level(logging.INFO, logger="httpx")
    channel(http_peer).send(ask())
    assert "HTTP Request: POST" in caplog.text  # httpx did log the request...
    assert "TOPSECRETSIG" not in caplog.text  # ...without the signature
    assert "sig=REDACTED" in caplog.text


def test_url_from_a_missing_secret_stops_the_run():
    from reclaim.secrets import SecretRef

    ref = SecretRef.parse("env:RECLAIM_TEST_NO_SUCH_TEAMS_URL")
    with pytest.raises(StopRun, match="RECLAIM_TEST_NO_SUCH_TEAMS_URL"):
        TeamsWebhookChannel(webhook_url=ref.resolve).send(ask())
