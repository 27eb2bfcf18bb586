"""The CampaignAsker inside the real worker: batching, quiet hours, one message a day,
SMTP 550 and a dead SMTP server (never read as consent)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from reclaim.campaigns.asker import CampaignAsker, build_asker
from reclaim.config import Settings
from reclaim.domain.case import CaseState
from reclaim.workflows.asker import OutboxAsker

from .conftest import Reply, free_port
from .flow import campaign_world
from .seed import LINK_KEY, LINK_KEY_ENV, campaign_settings

S = CaseState
TWO = (("Visio", "VISIO.EXE", "keep"), ("Miro", "MIRO.EXE", "release"))


@pytest.fixture(autouse=True)
def _link_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LINK_KEY_ENV, LINK_KEY)


def test_build_asker_picks_campaigns_only_when_configured(tmp_path: Path) -> None:
    with_campaigns = campaign_settings(data_dir=tmp_path, db_url="sqlite://", smtp_port=2525)
    assert isinstance(build_asker(None, with_campaigns), CampaignAsker)  # type: ignore[arg-type]
    assert isinstance(build_asker(None, Settings()), OutboxAsker)  # type: ignore[arg-type]


def test_two_policies_for_one_person_become_one_message_with_both_products(
    db_url: str, tmp_path: Path, smtp_server
) -> None:
    with campaign_world(db_url, tmp_path, smtp_server(), unused=1, active=1, policies=TWO) as cw:
        cw.world.cycle("Visio")
        cw.world.cycle("Miro")
        assert cw.drain().results() == {"asked": 2}
        [mail] = cw.mails()
        assert mail["Subject"] == "Do you still need these 2 licenses?"
        body = mail.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        assert "Visio" in text and "Miro" in text
        buttons = cw.all_links(mail)
        pages = {page for page, _ in buttons}
        assert len(buttons) == 4 and len(pages) == 2  # keep + release for each product
        assert {c for *_, c, _ in cw.sent_rows()} == {"sent"}
        assert len(cw.sent_rows()) == 2 and {r[3] for r in cw.sent_rows()} == {"email"}

        # Each product's own link answers its own case only.
        for page in pages:
            cw.http.post(urlsplit(page).path, data={"choice": "release"})
        assert cw.world.case("idle0@x.test", "Visio").case.state is S.ANSWERED_RELEASE
        assert cw.world.case("idle0@x.test", "Miro").case.state is S.ANSWERED_RELEASE


def test_two_threads_asking_one_person_at_once_send_one_message(
    db_url: str, tmp_path: Path, smtp_server
) -> None:
    # Two cases of one person run at the same moment on two threads, and the mail server
    # is slow: without a turn per person, each thread finds nothing sent yet and mails.
    smtp = smtp_server()
    smtp.recorder.delay = 0.5
    with campaign_world(db_url, tmp_path, smtp, unused=1, active=1, policies=TWO) as cw:
        cw.world.cycle("Visio")
        cw.world.cycle("Miro")
        assert cw.drain(concurrency=2).results() == {"asked": 2}
        [mail] = cw.mails()
        assert mail["Subject"] == "Do you still need these 2 licenses?"
        assert len(cw.sent_rows()) == 2


def test_a_second_ask_the_same_day_waits_for_tomorrow(
    db_url: str, tmp_path: Path, smtp_server
) -> None:
    with campaign_world(db_url, tmp_path, smtp_server(), unused=1, active=1, policies=TWO) as cw:
        cw.world.cycle("Visio")
        assert cw.drain().results() == {"asked": 1}
        cw.clock.advance(hours=2)
        cw.world.cycle("Miro")
        stats = cw.drain()
        assert stats.results() == {"deferred": 1}
        [report] = stats.reports
        assert "already written to today" in report.detail
        waiting = cw.world.case("idle0@x.test", "Miro")
        assert waiting.case.state is S.CANDIDATE
        assert waiting.failures == 0 and waiting.last_error is None  # a rule, not a failure
        assert len(cw.mails()) == 1
        cw.clock.advance(hours=22)  # next morning, 08:00 UTC = 09:00 in Paris
        assert cw.drain().results() == {"asked": 1}
        assert len(cw.mails()) == 2
        assert cw.world.case("idle0@x.test", "Miro").case.state is S.ASKED


def test_quiet_hours_hold_the_ask_until_morning(db_url: str, tmp_path: Path, smtp_server) -> None:
    evening = dt.datetime(2026, 11, 10, 19, 30, tzinfo=dt.UTC)  # 20:30 in Paris, a Tuesday
    with campaign_world(db_url, tmp_path, smtp_server(), unused=1, active=1, now=evening) as cw:
        cw.world.cycle()
        stats = cw.drain()
        assert stats.results() == {"deferred": 1} and "quiet hours" in stats.reports[0].detail
        stored = cw.world.case("idle0@x.test")
        assert stored.case.state is S.CANDIDATE
        assert stored.failures == 0 and stored.last_error is None
        morning = dt.datetime(2026, 11, 11, 7, 0, tzinfo=dt.UTC)  # 08:00 in Paris
        assert stored.next_due_at is not None and stored.next_due_at >= morning.timestamp()
        assert cw.mails() == []
        cw.clock.now = morning
        assert cw.drain().results() == {"asked": 1}


def test_smtp_550_marks_the_case_could_not_ask_never_consent(
    db_url: str, tmp_path: Path, smtp_server
) -> None:
    peer = smtp_server()
    peer.recorder.refuse["idle0@x.test"] = "550 5.1.1 <idle0@x.test>: unknown user"
    with campaign_world(db_url, tmp_path, peer, unused=2, active=1) as cw:
        cw.world.cycle()
        assert sorted(cw.drain().results().elements()) == ["asked", "could_not_ask"]
        refused = cw.world.case("idle0@x.test")
        assert (refused.case.state, refused.case.outcome) == (S.COULD_NOT_ASK, "other")
        assert "550" in (refused.last_error or "")
        cw.clock.advance(days=30)
        cw.world.cycle()
        cw.drain()
        assert cw.world.case("idle0@x.test").case.state is S.COULD_NOT_ASK
        assert ("Visio", "idle0@x.test") not in cw.world.directory.removals()
        assert [str(m["To"]) for m in cw.mails()] == ["idle1@x.test"]


def test_a_dead_smtp_server_retries_later_and_never_consents(
    db_url: str, tmp_path: Path, smtp_server
) -> None:
    peer = smtp_server()
    dead = free_port()  # nothing listens here
    with campaign_world(db_url, tmp_path, peer, unused=1, active=1, smtp_port=dead) as cw:
        cw.world.cycle()
        stats = cw.drain()
        assert stats.results() == {"retry": 1}
        stored = cw.world.case("idle0@x.test")
        assert stored.case.state is S.CANDIDATE and stored.failures == 1
        assert stored.next_due_at is not None
        assert stored.next_due_at > cw.clock().timestamp()
        assert cw.sent_rows() == []
        cw.clock.advance(days=20)
        cw.world.cycle()
        cw.drain()
        assert cw.world.case("idle0@x.test").case.state in (S.CANDIDATE, S.COULD_NOT_ASK)
        assert cw.world.directory.removals() == {}


def test_teams_first_then_email_when_the_webhook_fails(
    db_url: str, tmp_path: Path, smtp_server, http_peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_TEAMS_HOOK", f"{http_peer.url}/workflows/hook?sig=not-a-real-sig")
    replies = iter([Reply(202, ""), Reply(503, "busy")])
    http_peer.on("/workflows/hook", lambda _request: next(replies))
    extra = "  teams: {webhook_url: env:TEST_TEAMS_HOOK}\n"
    with campaign_world(
        db_url, tmp_path, smtp_server(), unused=2, active=1, channels="teams, email", extra=extra
    ) as cw:
        cw.world.cycle()
        stats = cw.drain()
        assert sorted(r.detail for r in stats.reports) == ["email", "teams"]
        [posted] = [r.json() for r in http_peer.to("/workflows/hook")][:1]
        card = posted["attachments"][0]["content"]
        assert card["type"] == "AdaptiveCard"
        assert posted["recipient"] in ("idle0@x.test", "idle1@x.test")
        by_teams = posted["recipient"]
        # The second ask met a busy webhook and went by mail instead.
        [mail] = cw.mails()
        assert str(mail["To"]) != by_teams
        assert sorted(str(r[3]) for r in cw.sent_rows()) == ["email", "teams"]
        for user in ("idle0@x.test", "idle1@x.test"):
            asked = cw.world.case(user).case
            assert asked.state is S.ASKED
            assert asked.history[-1].data["channel"] == ("teams" if user == by_teams else "email")
