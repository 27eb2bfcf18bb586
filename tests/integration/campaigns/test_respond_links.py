"""The response page's refusals and its "I need it back", over HTTP against uvicorn.

Cases are seeded already asked (``seed.asked_cases``); links are signed as a message
would carry them. Every refusal is checked to leave the case exactly as it was.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import Engine, func, select

from reclaim.bootstrap import Context
from reclaim.campaigns.response_writes import MAX_REASON
from reclaim.campaigns.tokens import TokenKeys
from reclaim.config import Settings
from reclaim.domain import case as dc
from reclaim.domain.case import CaseState
from reclaim.store import cases as store
from reclaim.store.leases import PAUSED, set_control
from reclaim.store.tables import case_events
from reclaim.testing.recording_directory import RecordingDirectory
from reclaim.web.app import create_app
from reclaim.web.settings import WebSettings

from .live import bind_loopback, serve
from .seed import ASKED_AT, LINK_KEY, LINK_KEY_ENV, answer_link, asked_cases
from .seed import campaign_settings as make_settings

S = CaseState
ALICE, BOB = "Alice.Martin@corp.example", "bob@corp.example"


@dataclass
class Site:
    engine: Engine
    settings: Settings
    url: str
    http: httpx.Client
    ids: dict[str, int]
    clock: list[dt.datetime]
    directory: RecordingDirectory

    def link(self, user: str, **kw: object) -> str:
        return answer_link(self.url, self.ids[user], user, **kw)  # type: ignore[arg-type]

    def path(self, user: str, **kw: object) -> str:
        return urlsplit(self.link(user, **kw)).path

    def case(self, user: str) -> store.StoredCase:
        with self.engine.connect() as conn:
            found = store.load_case(conn, self.ids[user])
        assert found is not None
        return found


@pytest.fixture
def site(tmp_path, db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setenv(LINK_KEY_ENV, LINK_KEY)
    sock = bind_loopback()
    host, port = sock.getsockname()[:2]
    settings = make_settings(
        data_dir=tmp_path / "data", db_url=db_url, base_url=f"http://{host}:{port}"
    )
    ids = asked_cases(engine, settings, [ALICE, BOB])
    clock = [ASKED_AT + dt.timedelta(days=1)]
    directory = RecordingDirectory({"Visio": [ALICE.lower(), BOB.lower()]})
    app = create_app(
        Context(settings, engine),
        now=lambda: clock[0],
        web_settings=WebSettings(secret="s" * 48),
        directories=lambda _p: directory,
    )
    with serve(app, sock) as url, httpx.Client(base_url=url, timeout=10) as http:
        yield Site(engine, settings, url, http, ids, clock, directory)


def _events(site: Site) -> int:
    with site.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(case_events)).scalar() or 0)


def test_a_tampered_token_gets_the_not_valid_page_and_changes_nothing(site: Site) -> None:
    path = site.path(ALICE)
    token = path.rsplit("/", 1)[1]
    head, payload, mac = token.split(".")
    edits = [
        f"{head}.{payload}.{mac[:-2]}{'A' if mac[-2] != 'A' else 'B'}{mac[-1]}",  # MAC changed
        f"{head}.{payload[:-1]}.{mac}",  # payload cut
        "r1.not-a-token",
        "x" * 3000,  # longer than any token
    ]
    before = _events(site)
    for bad in edits:
        page = site.http.get(f"/respond/{bad}")
        assert page.status_code == 404 and "This link is not valid" in page.text
        post = site.http.post(f"/respond/{bad}", data={"choice": "release"})
        assert post.status_code == 404
    assert _events(site) == before
    assert site.case(ALICE).case.state is S.ASKED


def test_a_link_for_one_person_does_not_work_for_another_case(site: Site) -> None:
    # Bob's token carries Bob's case id; swapping in Alice's case id breaks the MAC, and a
    # token for Alice's case signed for Bob's address is refused as well.
    swapped = answer_link(site.url, site.ids[ALICE], BOB)
    assert site.http.post(urlsplit(swapped).path, data={"choice": "release"}).status_code == 404
    other_key = TokenKeys.of("z" * 48)
    foreign = answer_link(site.url, site.ids[ALICE], ALICE, keys=other_key)
    assert site.http.post(urlsplit(foreign).path, data={"choice": "release"}).status_code == 404
    assert site.case(ALICE).case.state is S.ASKED


def test_an_expired_link_answers_nothing(site: Site) -> None:
    path = site.path(ALICE, days=2)
    site.clock[0] = ASKED_AT + dt.timedelta(days=2)  # the instant it expires
    page = site.http.get(path)
    assert page.status_code == 410 and "This link has expired" in page.text
    post = site.http.post(path, data={"choice": "release"})
    assert post.status_code == 410
    assert site.case(ALICE).case.state is S.ASKED


def test_get_never_answers_whatever_the_query_says(site: Site) -> None:
    for choice in ("release", "keep", "bogus"):
        assert site.http.get(site.link(ALICE) + f"?choice={choice}").status_code == 200
    assert site.case(ALICE).case.state is S.ASKED


def test_a_post_without_a_valid_choice_is_refused_with_the_form_again(site: Site) -> None:
    page = site.http.post(site.path(ALICE), data={"choice": "maybe"})
    assert page.status_code == 400
    assert 'role="alert"' in page.text and "Choose Keep it or Release it." in page.text
    assert site.case(ALICE).case.state is S.ASKED


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
    ],
)
def test_cross_site_posts_are_refused(site: Site, headers: dict[str, str]) -> None:
    post = site.http.post(site.path(ALICE), data={"choice": "release"}, headers=headers)
    assert post.status_code == 403 and "not accepted" in post.text
    assert site.case(ALICE).case.state is S.ASKED


def test_our_own_form_post_is_accepted_with_a_null_origin(site: Site) -> None:
    # With Referrer-Policy: no-referrer, browsers send "Origin: null" for the page's form.
    headers = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
    post = site.http.post(site.path(ALICE), data={"choice": "keep"}, headers=headers)
    assert post.status_code == 200
    assert site.case(ALICE).case.state is S.ANSWERED_KEEP


def test_the_reason_is_trimmed_and_control_characters_dropped(site: Site) -> None:
    reason = "  <b>no</b>\x00\x1b[31m" + "x" * 2000
    post = site.http.post(site.path(ALICE), data={"choice": "release", "reason": reason})
    assert post.status_code == 200
    assert "&lt;b&gt;no&lt;/b&gt;" in post.text and "<b>no</b>" not in post.text
    kept = site.case(ALICE).case.history[-1].data["reason"]
    assert isinstance(kept, str) and len(kept) == MAX_REASON
    assert kept.startswith("<b>no</b>  [31m") and "\x00" not in kept


def test_concurrent_answers_record_exactly_one(site: Site) -> None:
    path = site.path(BOB)
    results: list[int] = []

    def post(choice: str) -> None:
        with httpx.Client(base_url=site.url, timeout=10) as client:
            results.append(client.post(path, data={"choice": choice}).status_code)

    threads = [threading.Thread(target=post, args=(c,)) for c in ("keep", "release") * 5]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 10
    case = site.case(BOB).case
    assert [e.cause for e in case.history].count("answered") == 1
    assert case.state in (S.ANSWERED_KEEP, S.ANSWERED_RELEASE)


def test_need_it_back_before_the_removal_keeps_the_license(site: Site) -> None:
    path = site.path(ALICE)
    site.http.post(path, data={"choice": "release"})
    site.clock[0] += dt.timedelta(hours=2)
    back = site.http.post(f"{path}/restore", data={"reason": "I was wrong"})
    assert back.status_code == 200 and "you keep the license" in back.text
    case = site.case(ALICE).case
    assert case.state is S.CANCELLED
    assert "I was wrong" in str(case.history[-1].data["detail"])
    again = site.http.get(path)
    assert "Visio is yours again" in again.text
    assert site.directory.writes() == []  # the seat never left: nothing to write


def _remove(site: Site, user: str) -> None:
    """What the worker does after a release: mark the removal sent and done."""
    stored = site.case(user)
    now = site.clock[0]
    with site.engine.begin() as conn:
        pending = dc.begin_removal(stored.case, at=now)
        stored = store.save_case(conn, stored, pending)
        sent = dc.removal_sent(pending, at=now)
        stored = store.save_case(conn, stored, sent)
        store.save_case(conn, stored, dc.mark_removed(sent, at=now))
    site.directory.remove_member(
        policy=site.settings.policy("Visio"), user=user.lower(), idempotency_key=stored.remove_key
    )


def test_need_it_back_after_the_removal_restores_through_the_directory(site: Site) -> None:
    path = site.path(ALICE)
    site.http.post(path, data={"choice": "release"})
    _remove(site, ALICE)
    site.clock[0] = ASKED_AT + dt.timedelta(days=12)  # the link's deadline has passed
    page = site.http.get(path)
    assert page.status_code == 200 and "I need it back" in page.text
    back = site.http.post(f"{path}/restore", data={"reason": "new project"})
    assert back.status_code == 200 and "Visio is yours again" in back.text
    case = site.case(ALICE).case
    assert case.state is S.RESTORED
    requested, restored = case.history[-2:]
    assert requested.cause == "restore_requested" and restored.to_state is S.RESTORED
    assert requested.data["reason"] == "new project"
    assert restored.data["by"] == f"self-service:{ALICE.lower()}"
    adds = [w for w in site.directory.writes() if w["action"] == "add"]
    assert [(w["policy"], w["user"]) for w in adds] == [("Visio", ALICE.lower())]
    # A second click is told it is done and writes nothing more.
    assert "Visio is yours again" in site.http.post(f"{path}/restore", data={}).text
    assert len([w for w in site.directory.writes() if w["action"] == "add"]) == 1


def test_need_it_back_is_not_offered_after_the_restore_window(site: Site) -> None:
    path = site.path(ALICE)
    site.http.post(path, data={"choice": "release"})
    _remove(site, ALICE)
    site.clock[0] = ASKED_AT + dt.timedelta(days=1, seconds=1) + dt.timedelta(days=14)
    page = site.http.get(path)
    assert "I need it back" not in page.text
    back = site.http.post(f"{path}/restore", data={})
    assert back.status_code == 200 and "You have already answered" in back.text
    assert "Request received" not in back.text
    case = site.case(ALICE).case
    assert case.state is S.REMOVED and case.history[-1].cause == "removed"
    assert [w["action"] for w in site.directory.writes()] == ["remove"]


def test_restore_request_is_recorded_for_an_operator_when_the_workflow_cannot(
    site: Site,
) -> None:
    path = site.path(ALICE)
    site.http.post(path, data={"choice": "release"})
    _remove(site, ALICE)
    # The kill switch is on: the restore service refuses to write, so the request waits.
    with site.engine.begin() as conn:
        set_control(conn, PAUSED, "1", by="test", now=int(site.clock[0].timestamp()))
    back = site.http.post(f"{path}/restore", data={"reason": "urgent"})
    assert back.status_code == 200 and "Request received" in back.text
    case = site.case(ALICE).case
    assert case.state is S.REMOVED and case.history[-1].cause == "restore_requested"
    assert "You have already asked" in site.http.get(path).text
