"""Asking people when the messaging peers fail part-way through a campaign.

What the campaign tests already prove is not repeated here (see docs/reliability.md):
a dead SMTP server from the start, 550s, Teams 500s and timeouts, Slack 500s, revoked
Slack tokens and every channel down (tests/integration/campaigns). Added here: the SMTP
server going down in the middle of a campaign through the real worker, and a Slack
timeout falling back to email.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from reclaim.campaigns.delivery import DeliveryStatus, deliver
from reclaim.connectors.slack import SlackChannel
from reclaim.domain.case import CaseState
from tests.faults.scale import Figures, record
from tests.integration.campaigns.conftest import (  # noqa: F401  (fixtures)
    Recorder,
    Reply,
    SmtpPeer,
    free_port,
    http_peer,
    smtp_server,
    tls_files,
)
from tests.integration.campaigns.flow import campaign_world
from tests.integration.campaigns.seed import LINK_KEY, LINK_KEY_ENV
from tests.integration.campaigns.test_fallback import mail  # noqa: F401
from tests.integration.campaigns.test_slack import LOOKUP, POST, TOKEN, lookup
from tests.unit.campaigns.factories import ask

S = CaseState


@dataclass
class GoesDown(Recorder):
    """Records messages like the campaign tests' server, and after ``up_for`` of them
    says "421 shutting down" and stops the server for real (as a crashed relay would)."""

    up_for: int = 0
    controller: Controller | None = None

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if len(self.messages) >= self.up_for:
            controller = self.controller
            if controller is not None:
                self.controller = None
                # Stopping joins the server's own thread: do it from another one.
                threading.Thread(target=controller.stop, daemon=True).start()
            return "421 4.3.2 Service shutting down"
        envelope.mail_from = address
        return "250 OK"


@pytest.fixture
def failing_smtp() -> Iterator[tuple[GoesDown, int, list[Controller]]]:
    recorder = GoesDown(up_for=2)
    port = free_port()
    running: list[Controller] = []
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    recorder.controller = controller
    running.append(controller)
    yield recorder, port, running
    for c in running:
        with contextlib.suppress(AssertionError, RuntimeError):  # the recorder stopped it
            c.stop()


def test_smtp_down_mid_campaign_retries_asks_each_person_once_never_consents(
    db_url: str,
    tmp_path: Path,
    failing_smtp: tuple[GoesDown, int, list[Controller]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(LINK_KEY_ENV, LINK_KEY)
    recorder, port, running = failing_smtp
    peer = SmtpPeer("127.0.0.1", port, recorder, None)
    with campaign_world(db_url, tmp_path, peer, unused=6, active=1) as cw:
        cw.world.cycle()
        first = cw.drain()
        # Two mails went out, then the relay went down: the others wait for a retry.
        assert first.results()["asked"] == 2
        assert first.results()["retry"] == 4, first.results()
        idle = [f"idle{i}@x.test" for i in range(6)]
        waiting = [u for u in idle if cw.world.case(u).case.state is S.CANDIDATE]
        assert len(waiting) == 4
        for user in waiting:
            stored = cw.world.case(user)
            assert stored.failures == 1 and stored.last_error
            assert stored.next_due_at is not None and stored.next_due_at > cw.clock().timestamp()
        assert cw.world.directory.removals() == {}  # no answer is ever read into silence

        # The relay is back (same address); the retries go out, once per person.
        recorder.up_for = 10**6
        back = Controller(recorder, hostname="127.0.0.1", port=port)
        back.start()
        running.append(back)
        cw.clock.advance(hours=2)
        cw.drain()
        assert {cw.world.case(u).case.state for u in idle} == {S.ASKED}
        sent_to = sorted(str(m["To"]) for m in cw.mails())
        assert sent_to == sorted(idle)  # everyone asked exactly once
        assert cw.world.directory.removals() == {}
        record(
            Figures(
                fault="SMTP relay down mid-campaign, then back",
                peer="SMTP (aiosmtpd)",
                database=cw.world.ctx.engine.url.get_backend_name(),
                injected=1,
                cases=len(idle),
                consented=0,
                removals=len(cw.world.directory.removals()),
                duplicates=len(sent_to) - len(set(sent_to)),
                lost=len(set(idle) - set(sent_to)),
            )
        )


def test_slack_timeout_falls_back_to_email(http_peer, mail) -> None:  # noqa: F811
    smtp, email = mail
    http_peer.on(LOOKUP, lookup)
    http_peer.on(POST, Reply(200, {"ok": True}, delay=3.0))  # slower than the client waits
    channel = SlackChannel(token=TOKEN, base_url=f"{http_peer.url}/api/", timeout=1.0)
    result = deliver(ask(), [channel], fallback=email)
    assert result.status is DeliveryStatus.DELIVERED and result.channel == "email"
    assert result.attempts[0].outcome == "transient"
    assert len(smtp.recorder.messages) == 1
