"""Builders shared by the campaign tests: keys, items, requests, composed asks."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from reclaim.campaigns.messages import LinkSigner, OrgDetails, compose_ask
from reclaim.campaigns.model import AskItem, AskMessage, AskRequest, AskStage, Recipient, Sender
from reclaim.campaigns.tokens import TokenKeys

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
KEY = "k" * 32 + "-test-only-link-key"
OLD_KEY = "o" * 32 + "-test-only-old-link-key"
KEYS = TokenKeys.of(KEY)
BASE_URL = "https://reclaim.example"
SIGNER = LinkSigner(BASE_URL, KEYS)
ALICE = Recipient("Alice.Martin@corp.example", display_name="Alice Martin", timezone="Europe/Paris")
SENDER = Sender(address="licenses@corp.example", name="Contoso software team")
LINK = re.compile(r"https://reclaim\.example/respond/([A-Za-z0-9._-]+)\?choice=(keep|release)")


def item(case_id: str = "case-visio", **overrides: Any) -> AskItem:
    """A first ask about Visio, due in ten days."""
    base: dict[str, Any] = {
        "case_id": case_id,
        "policy": "Visio",
        "product": "Microsoft Visio",
        "respond_by": NOW + dt.timedelta(days=10),
        "last_used": dt.date(2025, 12, 1),
        "restore_window_days": 30,
    }
    base.update(overrides)
    return AskItem(**base)


def three_items() -> tuple[AskItem, ...]:
    """Visio (ask), Miro (reminder, release on silence), Acrobat (final notice)."""
    return (
        item(),
        item(
            "case-miro",
            policy="Miro",
            product="Miro",
            last_used=None,
            stage=AskStage.REMINDER,
            reminder=1,
            first_asked_on=dt.date(2026, 2, 26),
            on_no_response="release",
            respond_by=NOW + dt.timedelta(days=6),
        ),
        item(
            "case-acrobat",
            policy="Acrobat Pro",
            product="Adobe Acrobat Pro",
            stage=AskStage.FINAL,
            respond_by=NOW + dt.timedelta(days=1),
        ),
    )


def request(*items: AskItem, recipient: Recipient = ALICE, **kw: Any) -> AskRequest:
    """A request for ``recipient`` (default: one Visio item)."""
    return AskRequest(recipient=recipient, items=items or (item(),), **kw)


def ask(*items: AskItem, recipient: Recipient = ALICE, **kw: Any) -> AskMessage:
    """A composed ask (default templates, fixed NOW)."""
    template_dir = kw.pop("template_dir", None)
    return compose_ask(
        request(*items, recipient=recipient, **kw),
        links=SIGNER,
        now=NOW,
        template_dir=template_dir,
        org=OrgDetails(name="Contoso", support_contact="it-help@corp.example"),
    )
