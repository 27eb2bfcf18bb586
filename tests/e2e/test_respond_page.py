"""The employee response page in Chromium: from a received mail to a recorded answer.

Each test runs a real campaign: the worker mails through aiosmtpd, the test takes the
link out of the received message and opens it in the browser against the app served by
uvicorn (``tests/integration/campaigns/flow.py``). Screenshots (375 px wide among
them) go to test-output/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from reclaim.domain.case import CaseState
from tests.integration.campaigns.conftest import Recorder, SmtpPeer, free_port
from tests.integration.campaigns.flow import CampaignWorld, campaign_world
from tests.integration.campaigns.seed import LINK_KEY, LINK_KEY_ENV

from .conftest import screenshot

S = CaseState
USER = "idle0@x.test"


@pytest.fixture
def smtp() -> Iterator[SmtpPeer]:
    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpPeer("127.0.0.1", port, recorder, None)
    finally:
        controller.stop()


@pytest.fixture
def cw(tmp_path: Path, smtp: SmtpPeer, monkeypatch: pytest.MonkeyPatch) -> Iterator[CampaignWorld]:
    """A campaign already mailed to one idle person (SQLite)."""
    monkeypatch.setenv(LINK_KEY_ENV, LINK_KEY)
    with campaign_world(f"sqlite:///{tmp_path / 'r.db'}", tmp_path, smtp, unused=1) as world:
        world.world.cycle()
        assert world.drain().results() == {"asked": 1}
        yield world


def _link(cw: CampaignWorld, choice: str) -> str:
    [mail] = cw.mails()
    return cw.links(mail)[choice]


def _state(cw: CampaignWorld) -> CaseState:
    return cw.world.case(USER).case.state


def test_keep_from_the_mail_link(page: Any, cw: CampaignWorld) -> None:
    page.goto(_link(cw, "keep"))
    assert page.title().startswith("Do you still need Visio?")
    assert page.get_by_test_id("picked").inner_text().startswith("You chose “Keep it”")
    assert _state(cw) is S.ASKED  # opening the link recorded nothing
    page.get_by_role("button", name="Keep it").click()
    assert page.get_by_role("heading", level=1).inner_text() == (
        "Thank you: your answer is recorded"
    )
    assert "Visio: Keep it" in page.get_by_test_id("recorded-answer").inner_text()
    assert _state(cw) is S.ANSWERED_KEEP
    screenshot(page, "respond-keep-confirmation")


def test_release_with_a_reason(page: Any, cw: CampaignWorld) -> None:
    page.goto(_link(cw, "release"))
    page.get_by_label("Reason").fill("Switched to draw.io <script>alert(1)</script>")
    page.get_by_role("button", name="Release it").click()
    recorded = page.get_by_test_id("recorded-answer").inner_text()
    assert "Visio: Release it" in recorded
    assert "Switched to draw.io <script>alert(1)</script>" in recorded  # shown as text
    case = cw.world.case(USER).case
    assert case.state is S.ANSWERED_RELEASE
    assert case.history[-1].data["reason"] == "Switched to draw.io <script>alert(1)</script>"
    # Reloading the link shows the recorded answer, not the question.
    page.goto(_link(cw, "keep"))
    assert page.get_by_role("heading", level=1).inner_text() == "You have already answered"
    assert page.get_by_role("button", name="Keep it").count() == 0


def test_expired_link(page: Any, cw: CampaignWorld) -> None:
    cw.clock.advance(days=11)
    response = page.goto(_link(cw, "release"))
    assert response.status == 410
    assert page.get_by_role("heading", level=1).inner_text() == "This link has expired"
    assert page.get_by_role("button").count() == 0
    screenshot(page, "respond-expired")


def test_i_need_it_back_after_the_seat_was_removed(page: Any, cw: CampaignWorld) -> None:
    page.goto(_link(cw, "release"))
    page.get_by_role("button", name="Release it").click()
    cw.world.cycle()
    assert cw.drain().results() == {"removed": 1}
    page.goto(_link(cw, "release"))
    page.get_by_label("What do you need it for?").fill("A new project needs diagrams")
    page.get_by_role("button", name="I need it back").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Visio is yours again"
    case = cw.world.case(USER).case
    assert case.state is S.RESTORED
    assert [w["action"] for w in cw.world.directory.writes()] == ["remove", "add"]
    screenshot(page, "respond-restored")


def test_keyboard_only_path(page: Any, cw: CampaignWorld) -> None:
    page.goto(_link(cw, "keep").split("?")[0])  # the page itself, no choice preselected
    focused = []
    for _ in range(3):
        page.keyboard.press("Tab")
        focused.append(
            page.evaluate("document.activeElement.id || document.activeElement.textContent")
        )
    assert focused == ["reason", "Keep it", "Release it"]
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.type("Still needed for the floor plans")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # "Keep it"
    heading = page.get_by_role("heading", level=1)
    assert heading.inner_text() == "Thank you: your answer is recorded"
    assert page.evaluate("document.activeElement.tagName") == "H1"  # focus moved to the news
    case = cw.world.case(USER).case
    assert case.state is S.ANSWERED_KEEP
    assert case.history[-1].data["reason"] == "Still needed for the floor plans"


def test_landmarks_labels_and_a_375_px_screenshot(browser: Any, cw: CampaignWorld) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 812}, device_scale_factor=2)
    page = context.new_page()
    try:
        page.goto(_link(cw, "release"))
        assert page.get_by_role("main").count() == 1
        assert page.get_by_role("banner").count() == 1
        assert page.get_by_role("contentinfo").count() == 1
        assert page.get_by_label("Reason").count() == 1
        # Nothing is wider than the screen (no sideways scrolling on a phone).
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        release = page.get_by_role("button", name="Release it")
        box = release.bounding_box()
        assert box is not None and box["height"] >= 44 and box["width"] >= 300
        path = screenshot(page, "respond-375px")
        assert path.exists() and path.stat().st_size > 0
    finally:
        context.close()
