"""deliver(): order, fallback to email, and what the runner is told (with fake channels)."""

from __future__ import annotations

import pytest

from reclaim.campaigns.delivery import Channel, DeliveryStatus, Sent, deliver
from reclaim.campaigns.model import AskMessage
from reclaim.connectors.errors import ConnectorError, NotFound, Rejected, StopRun, Transient
from tests.unit.campaigns.factories import ask

ASK = ask()


class Fake:
    """A channel that raises the given error, or accepts."""

    def __init__(self, name: str, error: ConnectorError | Exception | None = None) -> None:
        self.name = name
        self.error = error
        self.calls: list[AskMessage] = []

    def send(self, ask: AskMessage) -> Sent:
        self.calls.append(ask)
        if self.error is not None:
            raise self.error
        return Sent(self.name, message_id=f"{self.name}-1")


def test_fakes_satisfy_the_protocol():
    assert isinstance(Fake("email"), Channel)


def test_first_channel_that_works_wins_and_others_are_not_bothered():
    teams, email = Fake("teams"), Fake("email")
    result = deliver(ASK, [teams, email], fallback=email)
    assert result.status is DeliveryStatus.DELIVERED and result.delivered
    assert result.channel == "teams"
    assert result.sent == Sent("teams", message_id="teams-1")
    assert email.calls == []


@pytest.mark.parametrize(
    "error",
    [Transient("HTTP 500"), Rejected("HTTP 400"), StopRun("webhook gone"), NotFound("?")],
)
def test_failing_chat_channel_falls_back_to_email(error):
    teams, email = Fake("teams", error), Fake("email")
    result = deliver(ASK, [teams], fallback=email)
    assert result.channel == "email"
    assert [(a.channel, a.outcome) for a in result.attempts][1] == ("email", "sent")
    assert result.attempts[0].detail == error.detail
    assert result.broken_channels == (("teams",) if isinstance(error, StopRun) else ())


def test_policy_order_is_kept_and_email_is_not_tried_twice():
    slack = Fake("slack", Rejected("users_not_found"))
    email = Fake("email", Rejected("550 unknown user"))
    teams = Fake("teams")
    result = deliver(ASK, [email, slack, teams], fallback=email)
    assert [a.channel for a in result.attempts] == ["email", "slack", "teams"]
    assert result.channel == "teams"
    assert len(email.calls) == 1


def test_every_channel_refusing_the_person_is_undeliverable():
    result = deliver(
        ASK, [Fake("slack", Rejected("users_not_found"))], fallback=Fake("email", Rejected("550"))
    )
    assert result.status is DeliveryStatus.UNDELIVERABLE
    assert not result.delivered
    assert (
        result.summary()
        == "undeliverable [slack: rejected (users_not_found); email: rejected (550)]"
    )


def test_any_transient_means_retry_with_the_longest_hint():
    result = deliver(
        ASK,
        [
            Fake("teams", Transient("429", retry_after=30)),
            Fake("slack", Transient("x", retry_after=5)),
        ],
        fallback=Fake("email", Rejected("550")),
    )
    assert result.status is DeliveryStatus.RETRY
    assert result.retry_after == 30


def test_broken_channel_and_refused_person_is_retry_not_could_not_ask():
    # Slack is down (StopRun) and email refused: Slack might have reached them.
    result = deliver(
        ASK, [Fake("slack", StopRun("token_revoked"))], fallback=Fake("email", Rejected("550"))
    )
    assert result.status is DeliveryStatus.RETRY
    assert result.broken_channels == ("slack",)


def test_all_channels_broken_stops_the_run():
    with pytest.raises(StopRun, match="token_revoked"):
        deliver(
            ASK, [Fake("slack", StopRun("token_revoked"))], fallback=Fake("email", StopRun("auth"))
        )


def test_skipped_channels_are_not_tried():
    slack, email = Fake("slack"), Fake("email")
    result = deliver(ASK, [slack], fallback=email, skip=["slack"])
    assert result.channel == "email"
    assert slack.calls == []
    with pytest.raises(StopRun, match="no channel"):
        deliver(ASK, [slack], fallback=email, skip=["slack", "email"])


def test_programming_errors_are_not_swallowed():
    with pytest.raises(KeyError):
        deliver(ASK, [Fake("teams", KeyError("bug"))], fallback=Fake("email"))
