"""A campaign end to end: the worker mails (aiosmtpd receives), the link is followed over
HTTP to the app served by uvicorn, the answer moves the case; on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from reclaim.domain.case import CaseState

from .flow import campaign_world
from .seed import LINK_KEY, LINK_KEY_ENV

S = CaseState


@pytest.fixture(autouse=True)
def _link_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LINK_KEY_ENV, LINK_KEY)


def _main(html: str) -> str:
    """The page's <main>, with tags dropped and spaces collapsed, for reading asserts."""
    inner = html[html.index("<main") : html.index("</main>")]
    return " ".join(re.sub(r"<[^>]+>", " ", inner).split())


def test_mail_link_followed_over_http_records_the_release_and_the_worker_removes(
    db_url: str, tmp_path: Path, smtp_server
) -> None:
    with campaign_world(db_url, tmp_path, smtp_server(), unused=2, active=1) as cw:
        cw.world.cycle()
        assert cw.drain().results() == {"asked": 2}
        mails = cw.mails()
        assert sorted(str(m["To"]) for m in mails) == ["idle0@x.test", "idle1@x.test"]
        assert [m["Subject"] for m in mails] == ["Do you still need Visio?"] * 2
        [mail] = [m for m in mails if str(m["To"]) == "idle0@x.test"]
        links = cw.links(mail)
        assert set(links) == {"keep", "release"}

        # Opening the link (what a mail scanner does) shows the question and changes nothing.
        page = cw.http.get(links["release"])
        assert page.status_code == 200
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "no-store" in page.headers["cache-control"]
        text = _main(page.text)
        assert "Do you still need Visio?" in text and "Nothing is recorded until" in text
        assert cw.world.case("idle0@x.test").case.state is S.ASKED

        # The form posts back to the page's own path, without the query.
        action = re.search(r'<form method="post" action="([^"]+)"', page.text)
        assert action is not None and action.group(1) == urlsplit(links["release"]).path
        done = cw.http.post(action.group(1), data={"choice": "release", "reason": "never use it"})
        assert done.status_code == 200
        assert "Thank you: your answer is recorded" in _main(done.text)
        stored = cw.world.case("idle0@x.test")
        assert stored.case.state is S.ANSWERED_RELEASE
        assert stored.case.history[-1].data == {"reason": "never use it"}
        assert cw.world.case("idle1@x.test").case.state is S.ASKED  # only that person

        # The next cycle plans the removal and the worker carries it out, once.
        cw.world.cycle()
        assert cw.drain().results() == {"removed": 1}
        assert cw.world.case("idle0@x.test").case.state is S.REMOVED
        assert cw.world.directory.removals()[("Visio", "idle0@x.test")] == 1


def test_keep_is_final_and_a_second_answer_shows_the_first(
    db_url: str, tmp_path: Path, smtp_server
) -> None:
    with campaign_world(db_url, tmp_path, smtp_server(), unused=1, active=1) as cw:
        cw.world.cycle()
        cw.drain()
        [mail] = cw.mails()
        path = urlsplit(cw.links(mail)["keep"]).path
        assert cw.http.post(path, data={"choice": "keep"}).status_code == 200
        again = cw.http.post(path, data={"choice": "release", "reason": "changed my mind"})
        assert again.status_code == 200
        text = _main(again.text)
        assert "You have already answered" in text and "Visio: Keep it" in text
        case = cw.world.case("idle0@x.test").case
        assert case.state is S.ANSWERED_KEEP
        assert [e.cause for e in case.history].count("answered") == 1
        assert cw.drain().results() == {}  # nothing more to do for a kept license


def test_reminders_then_final_notice_then_timeout_driven_by_the_clock(
    db_url: str, tmp_path: Path, smtp_server
) -> None:
    with campaign_world(db_url, tmp_path, smtp_server(), unused=1, active=1) as cw:
        cw.world.cycle()
        cw.drain()
        cw.clock.advance(days=2, hours=23)
        assert cw.drain().results() == {}  # day 3 not reached yet
        cw.clock.advance(hours=1)
        assert cw.drain().results() == {"reminded": 1}
        cw.clock.advance(days=3)
        assert cw.drain().results() == {"reminded": 1}
        subjects = [m["Subject"] for m in cw.mails()]
        assert subjects == [
            "Do you still need Visio?",
            "Reminder: do you still need Visio?",
            "Final notice: do you still need Visio?",
        ]
        first_link = cw.links(cw.mails()[0])["keep"]
        cw.clock.advance(days=4)  # day 10: the response timeout (default keep)
        assert cw.drain().results() == {"no_response": 1}
        assert cw.world.case("idle0@x.test").case.state is S.NO_RESPONSE
        expired = cw.http.get(first_link)
        assert expired.status_code == 410
        assert "This link has expired" in _main(expired.text)
        late = cw.http.post(urlsplit(first_link).path, data={"choice": "release"})
        assert late.status_code == 410
        assert cw.world.case("idle0@x.test").case.state is S.NO_RESPONSE
        assert [k for k, *_ in cw.sent_rows()] == ["ask", "remind", "remind"]


def test_an_answer_stops_the_reminders(db_url: str, tmp_path: Path, smtp_server) -> None:
    with campaign_world(db_url, tmp_path, smtp_server(), unused=1, active=1) as cw:
        cw.world.cycle()
        cw.drain()
        path = urlsplit(cw.links(cw.mails()[0])["keep"]).path
        cw.clock.advance(days=1)
        cw.http.post(path, data={"choice": "keep"})
        cw.clock.advance(days=8)
        cw.drain()
        assert len(cw.mails()) == 1
