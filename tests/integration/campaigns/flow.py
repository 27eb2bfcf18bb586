"""A whole campaign on loopback: store, worker with the CampaignAsker, aiosmtpd, the app.

:func:`campaign_world` builds the decisions tests' small organization (idle and busy
people, a clock the test moves) with a ``campaigns:`` and ``smtp:`` configuration,
and serves the web app with uvicorn on a real socket, so a test can take the link out
of a received mail and follow it over HTTP.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import httpx
from sqlalchemy import select

from reclaim.campaigns.asker import build_asker
from reclaim.runner.worker import WorkerStats
from reclaim.store.tables import notifications
from reclaim.web.app import create_app
from reclaim.web.settings import WebSettings
from tests.integration.decisions.conftest import (
    NOW,
    import_group,
    import_usage,
    open_store,
    workdays,
)
from tests.integration.decisions.world import Clock, World

from .live import bind_loopback, serve
from .seed import campaign_settings

DAY = dt.timedelta(days=1)
LINK = re.compile(r"(https?://127\.0\.0\.1:\d+/respond/[A-Za-z0-9._-]+)\?choice=(keep|release)")


@dataclass
class CampaignWorld:
    """The world, the SMTP server's recorder, and the app's base URL."""

    world: World
    smtp: object  # tests.integration.campaigns.conftest.SmtpPeer
    url: str
    http: httpx.Client

    @property
    def clock(self) -> Clock:
        return self.world.clock

    def drain(self, **worker: object) -> WorkerStats:
        """One worker pass with the asker the runner would build for these settings
        (``worker``: more Worker arguments, e.g. ``concurrency``)."""
        asker = build_asker(self.world.ctx.engine, self.world.ctx.settings)
        return self.world.drain(asker=asker, **worker)

    def mails(self) -> list[EmailMessage]:
        """Every message the SMTP server received, parsed."""
        parser = BytesParser(policy=email_policy.default)
        return [parser.parsebytes(m.data) for m in self.smtp.recorder.messages]  # type: ignore[attr-defined]

    def links(self, mail: EmailMessage) -> dict[str, str]:
        """choice → link, from the plain-text part (the first product's links)."""
        text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        found: dict[str, str] = {}
        for page, choice in LINK.findall(text):
            found.setdefault(choice, f"{page}?choice={choice}")
        return found

    def all_links(self, mail: EmailMessage) -> list[tuple[str, str]]:
        """(page, choice) for every button in the mail, in order."""
        text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        return [(page, choice) for page, choice in LINK.findall(text)]

    def sent_rows(self) -> list[tuple[str, int, str, str | None]]:
        """(kind, case id, status, channel) of every notifications row."""
        with self.world.ctx.engine.connect() as conn:
            rows = conn.execute(
                select(
                    notifications.c.kind,
                    notifications.c.case_id,
                    notifications.c.status,
                    notifications.c.channel,
                ).order_by(notifications.c.id)
            )
            return [tuple(r) for r in rows]


@contextmanager
def campaign_world(
    db_url: str,
    tmp: Path,
    smtp: object,
    *,
    unused: int = 2,
    active: int = 1,
    policies: tuple[tuple[str, str, str], ...] = (("Visio", "VISIO.EXE", "keep"),),
    now: dt.datetime = NOW,
    smtp_port: int | None = None,
    channels: str = "email",
    extra: str = "",
) -> Iterator[CampaignWorld]:
    """Build the world (every policy's group holds the same people) and serve the app."""
    sock = bind_loopback()
    host, port = sock.getsockname()[:2]
    settings = campaign_settings(
        data_dir=tmp / "data",
        db_url=db_url,
        base_url=f"http://{host}:{port}",
        smtp_port=smtp_port or smtp.port,  # type: ignore[attr-defined]
        policies=policies,
        channels=channels,
        extra=extra,
    )
    ctx = open_store(settings, now=now)
    idle = [f"idle{i}@x.test" for i in range(unused)]
    busy = [f"busy{i}@x.test" for i in range(active)]
    days = workdays(now.date() - 200 * DAY, now.date() + 40 * DAY)
    events = [(u, "OUTLOOK.EXE", d, 600) for u in idle + busy for d in days]
    events += [(u, app, d, 1800) for u in busy for d in days for _, app, _ in policies]
    import_usage(ctx.engine, tmp, events, now=now + 41 * DAY)
    members = {u: now.date() - 300 * DAY for u in idle + busy}
    for name, _, _ in policies:
        import_group(ctx, tmp, name, members, now=now)
    from reclaim.testing.recording_directory import RecordingDirectory

    directory = RecordingDirectory({name: list(members) for name, _, _ in policies})
    world = World(ctx, tmp, directory, Clock(now))
    # The page's "I need it back" restores through the same directory as the worker.
    app = create_app(
        ctx,
        now=world.clock,
        web_settings=WebSettings(secret="c" * 48),
        directories=lambda _p: directory,
    )
    with serve(app, sock) as url, httpx.Client(base_url=url, timeout=10) as http:
        yield CampaignWorld(world, smtp, url, http)
    ctx.engine.dispose()
