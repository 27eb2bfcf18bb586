"""Employee response links: tampered, expired, replayed or borrowed links answer nothing.

The link is the only credential of ``/respond/{token}``. Each test drives the page over
HTTP (in process) on SQLite and PostgreSQL and checks the store afterwards: a refused
link leaves every case and its history exactly as they were.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import Engine, func, select

from reclaim.bootstrap import Context
from reclaim.campaigns.responses import Responder
from reclaim.campaigns.tokens import sign
from reclaim.domain.case import CaseState
from reclaim.store import cases as store
from reclaim.store.tables import case_events
from reclaim.testing.recording_directory import RecordingDirectory
from reclaim.web.app import create_app
from reclaim.web.settings import WebSettings
from tests.integration.campaigns.seed import (
    ASKED_AT,
    KEYS,
    LINK_KEY,
    LINK_KEY_ENV,
    answer_link,
    asked_cases,
    campaign_settings,
)
from tests.integration.web.conftest import client_for

pytestmark = pytest.mark.anyio
S = CaseState
ALICE, BOB = "alice@corp.example", "bob@corp.example"
BASE = "https://reclaim.corp.example"
POLICIES = (("Visio", "VISIO.EXE", "keep"), ("Miro", "Miro", "keep"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Site:
    engine: Engine
    http: httpx.AsyncClient
    ids: dict[tuple[str, str], int]  # (person, policy) → case id
    clock: list[dt.datetime]

    def path(self, user: str, policy: str = "Visio", **kw: object) -> str:
        link = answer_link(BASE, self.ids[(user, policy)], user, **kw)  # type: ignore[arg-type]
        return urlsplit(link).path

    def state(self, user: str, policy: str = "Visio") -> S:
        with self.engine.connect() as conn:
            found = store.load_case(conn, self.ids[(user, policy)])
        assert found is not None
        return found.case.state

    def events(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(case_events)).scalar() or 0)


@pytest.fixture
async def site(
    tmp_path, db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Site]:
    monkeypatch.setenv(LINK_KEY_ENV, LINK_KEY)
    settings = campaign_settings(
        data_dir=tmp_path / "data", db_url=db_url, base_url=BASE, policies=POLICIES
    )
    ids: dict[tuple[str, str], int] = {}
    for policy in ("Visio", "Miro"):
        for user, case_id in asked_cases(engine, settings, [ALICE, BOB], policy=policy).items():
            ids[(user, policy)] = case_id
    clock = [ASKED_AT + dt.timedelta(days=1)]
    directory = RecordingDirectory({"Visio": [ALICE, BOB], "Miro": [ALICE, BOB]})
    app = create_app(
        Context(settings, engine), now=lambda: clock[0], web_settings=WebSettings(secret="s" * 48)
    )
    app.state.responder = Responder(engine, settings, KEYS, directories=lambda _p: directory)
    async with client_for(app, https=True) as http:
        yield Site(engine, http, ids, clock)


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _flip(token: str, i: int) -> str:
    """``token`` with the character at ``i`` replaced by another legal one."""
    old = token[i]
    new = "." if old not in _B64 + "." else _B64[(_B64.index(old) + 1) % 64] if old != "." else "A"
    return token[:i] + new + token[i + 1 :]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def test_every_single_character_edit_is_refused(site: Site) -> None:
    """Version, separators, payload and MAC: an edit anywhere makes the link invalid."""
    token = site.path(ALICE).rsplit("/", 1)[1]
    version, payload, mac = token.split(".")
    classes = {
        "version": range(0, len(version)),
        "separator": [len(version), len(version) + 1 + len(payload)],
        "payload": range(len(version) + 1, len(version) + 1 + len(payload)),
        "mac": range(len(token) - len(mac), len(token)),
    }
    before = site.events()
    for name, positions in classes.items():
        for i in positions:
            bad = _flip(token, i)
            assert bad != token
            page = await site.http.get(f"/respond/{bad}")
            assert page.status_code == 404, (name, i, bad)
            assert "This link is not valid" in page.text
        # and an answer posted with an edited link in each class records nothing
        post = await site.http.post(
            f"/respond/{_flip(token, positions[-1])}", data={"choice": "release"}
        )
        assert post.status_code == 404, name
    for bad in (token[:-1], token + "A", token + ".x", token.replace(".", "..", 1), ""):
        assert (
            await site.http.post(f"/respond/{bad}", data={"choice": "release"})
        ).status_code in (
            404,
            405,  # the empty token: no such route
        )
    assert site.events() == before
    assert site.state(ALICE) is S.ASKED


async def test_a_link_edited_to_point_at_another_case_is_refused(site: Site) -> None:
    """Alice's Visio MAC with the payload of her Miro case (or Bob's case)."""
    token = site.path(ALICE).rsplit("/", 1)[1]
    version, payload, mac = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    before = site.events()
    for other in (site.ids[(ALICE, "Miro")], site.ids[(BOB, "Visio")]):
        forged = _b64(json.dumps({**claims, "c": str(other)}, separators=(",", ":")).encode())
        r = await site.http.post(f"/respond/{version}.{forged}.{mac}", data={"choice": "release"})
        assert r.status_code == 404
    assert site.events() == before
    assert {site.state(u, p) for u, p in site.ids} == {S.ASKED}


async def test_a_genuine_link_answers_only_its_own_case(site: Site) -> None:
    r = await site.http.post(site.path(ALICE), data={"choice": "release", "reason": "unused"})
    assert r.status_code == 200
    assert site.state(ALICE, "Visio") is S.ANSWERED_RELEASE
    assert site.state(ALICE, "Miro") is S.ASKED  # same person, other case: untouched
    assert site.state(BOB, "Visio") is S.ASKED


async def test_a_link_for_another_person_is_refused(site: Site) -> None:
    """A link signed for Bob on Alice's case (the MAC binds the person)."""
    token = sign(
        keys=KEYS,
        case_id=str(site.ids[(ALICE, "Visio")]),
        upn=BOB,
        purpose="answer",
        expires_at=ASKED_AT + dt.timedelta(days=10),
        now=ASKED_AT,
    )
    r = await site.http.post(f"/respond/{token}", data={"choice": "release"})
    assert r.status_code == 404
    assert site.state(ALICE) is S.ASKED


async def test_a_restore_link_cannot_answer(site: Site) -> None:
    """Purpose is signed too: a link issued to restore does not record an answer."""
    token = sign(
        keys=KEYS,
        case_id=str(site.ids[(ALICE, "Visio")]),
        upn=ALICE,
        purpose="restore",
        expires_at=ASKED_AT + dt.timedelta(days=10),
        now=ASKED_AT,
    )
    r = await site.http.post(f"/respond/{token}", data={"choice": "release"})
    assert r.status_code == 404
    assert site.state(ALICE) is S.ASKED


async def test_an_expired_link_answers_nothing_even_a_second_later(site: Site) -> None:
    path = site.path(ALICE, days=2)
    site.clock[0] = ASKED_AT + dt.timedelta(days=2) - dt.timedelta(seconds=1)
    assert (await site.http.get(path)).status_code == 200  # still valid a second before
    site.clock[0] = ASKED_AT + dt.timedelta(days=2)
    assert (await site.http.post(path, data={"choice": "release"})).status_code == 410
    site.clock[0] = ASKED_AT + dt.timedelta(days=200)
    assert (await site.http.post(path, data={"choice": "keep"})).status_code == 410
    assert site.state(ALICE) is S.ASKED


async def test_replay_after_an_answer_changes_nothing(site: Site) -> None:
    """The first answer counts; replaying the link (same or other choice) records nothing."""
    path = site.path(ALICE)
    first = await site.http.post(path, data={"choice": "keep", "reason": "weekly"})
    assert first.status_code == 200 and site.state(ALICE) is S.ANSWERED_KEEP
    after_first = site.events()
    for choice in ("release", "keep", "release"):
        again = await site.http.post(path, data={"choice": choice, "reason": "changed"})
        assert again.status_code == 200
        assert "You have already answered" in again.text and "Keep it" in again.text
    assert site.events() == after_first
    assert site.state(ALICE) is S.ANSWERED_KEEP
