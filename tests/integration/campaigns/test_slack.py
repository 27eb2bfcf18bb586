"""The Slack channel: the real slack_sdk WebClient against a local stand-in Web API."""

from __future__ import annotations

import pytest

from reclaim.connectors.errors import Rejected, StopRun, Transient
from reclaim.connectors.slack import SlackChannel
from tests.integration.campaigns.conftest import Reply, Request, free_port
from tests.unit.campaigns.factories import ask, three_items

TOKEN = "xoxb-fake-test-token"  # obviously fake fixture value
LOOKUP = "/api/users.lookupByEmail"
POST = "/api/chat.postMessage"
USERS = {"alice.martin@corp.example": {"id": "U0ALICE", "deleted": False, "is_bot": False}}


def lookup(request: Request) -> Reply:
    email = (request.query.get("email") or request.form().get("email") or [""])[0]
    user = USERS.get(email.lower())
    if user is None:
        return Reply(200, {"ok": False, "error": "users_not_found"})
    return Reply(200, {"ok": True, "user": user})


def post(request: Request) -> Reply:
    return Reply(200, {"ok": True, "channel": "D0DM", "ts": "1767225600.000100"})


@pytest.fixture
def slack_api(http_peer):
    http_peer.on(LOOKUP, lookup)
    http_peer.on(POST, post)
    return http_peer


def channel(peer, **kw) -> SlackChannel:
    return SlackChannel(
        token=TOKEN, base_url=f"{peer.url}/api/", timeout=kw.pop("timeout", 5), **kw
    )


def email_asked(request: Request) -> str:
    return (request.query.get("email") or request.form().get("email") or [""])[0]


def test_looks_up_the_person_then_posts_the_blocks_to_them(slack_api):
    message = ask(*three_items())
    sent = channel(slack_api).send(message)
    assert (sent.channel, sent.message_id) == ("slack", "1767225600.000100")

    [looked] = slack_api.to(LOOKUP)
    assert email_asked(looked) == "Alice.Martin@corp.example"
    assert looked.headers["authorization"] == f"Bearer {TOKEN}"
    [posted] = slack_api.to(POST)
    assert posted.headers["authorization"] == f"Bearer {TOKEN}"
    assert posted.headers["content-type"].startswith("application/json")
    assert posted.json() == {
        "channel": "U0ALICE",  # a user id: Slack posts into the app's DM with them
        "text": message.slack.text,
        "blocks": [dict(b) for b in message.slack.blocks],
        "unfurl_links": False,
        "unfurl_media": False,
    }
    buttons = [e for b in posted.json()["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert len(buttons) == 6
    assert all(b["type"] == "button" and "/respond/" in b["url"] for b in buttons)


def test_user_id_is_looked_up_once_per_channel(slack_api):
    slack = channel(slack_api)
    slack.send(ask())
    slack.send(ask())
    assert len(slack_api.to(LOOKUP)) == 1
    assert len(slack_api.to(POST)) == 2


@pytest.mark.parametrize(
    ("path", "reply", "kind", "code"),
    [
        (
            LOOKUP,
            Reply(200, {"ok": False, "error": "users_not_found"}),
            Rejected,
            "slack-users_not_found",
        ),
        (
            LOOKUP,
            Reply(200, {"ok": True, "user": {"id": "U1", "deleted": True}}),
            Rejected,
            "slack-deleted",
        ),
        (
            LOOKUP,
            Reply(200, {"ok": True, "user": {"id": "B1", "is_bot": True}}),
            Rejected,
            "slack-not-person",
        ),
        (LOOKUP, Reply(200, {"ok": False, "error": "invalid_auth"}), StopRun, "slack-invalid_auth"),
        (POST, Reply(200, {"ok": False, "error": "token_revoked"}), StopRun, "slack-token_revoked"),
        (
            LOOKUP,
            Reply(200, {"ok": False, "error": "missing_scope"}),
            StopRun,
            "slack-missing_scope",
        ),
        (
            POST,
            Reply(200, {"ok": False, "error": "invalid_blocks"}),
            Rejected,
            "slack-invalid_blocks",
        ),
        (
            POST,
            Reply(200, {"ok": False, "error": "internal_error"}),
            Transient,
            "slack-internal_error",
        ),
        (POST, Reply(500, "<html>oops</html>"), Transient, "slack-500"),
        (POST, Reply(503, {"ok": False, "error": "service_unavailable"}), Transient, "slack-503"),
        (POST, Reply(200, "<html>proxy page</html>"), Transient, "slack-bad-response"),
    ],
)
def test_errors_become_connector_errors(slack_api, path, reply, kind, code):
    slack_api.on(path, reply)
    with pytest.raises(kind) as info:
        channel(slack_api).send(ask())
    assert type(info.value) is kind
    if code:
        assert info.value.code == code
    assert TOKEN not in info.value.detail


def test_rate_limit_is_transient_with_retry_after(slack_api):
    slack_api.on(POST, Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"}))
    with pytest.raises(Transient) as info:
        channel(slack_api).send(ask())
    assert info.value.retry_after == 30.0
    assert info.value.code == "slack-ratelimited"
    assert len(slack_api.to(POST)) == 1  # slack_sdk did not retry behind our back


def test_slack_unreachable_is_transient():
    dead = SlackChannel(token=TOKEN, base_url=f"http://127.0.0.1:{free_port()}/api/")
    with pytest.raises(Transient) as info:
        dead.send(ask())
    assert info.value.code == "slack-network"


def test_missing_token_secret_stops_the_run():
    from reclaim.secrets import SecretRef

    ref = SecretRef.parse("env:RECLAIM_TEST_NO_SUCH_SLACK_TOKEN")
    with pytest.raises(StopRun, match="RECLAIM_TEST_NO_SUCH_SLACK_TOKEN"):
        SlackChannel(token=ref.resolve).send(ask())
