"""The values a campaign passes around: who is asked, about what, and the composed message.

Pure data, no I/O. The runner builds an :class:`AskRequest` (one person, one or several
products), :func:`reclaim.campaigns.messages.compose_ask` turns it into an
:class:`AskMessage` holding every channel's rendering, and a channel sends that.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from reclaim.domain.names import user_key


class AskStage(StrEnum):
    """Where an item stands in its campaign: the first ask, a reminder, the last one."""

    ASK = "ask"
    REMINDER = "reminder"
    FINAL = "final"  # the last message before the response timeout applies the default


@dataclass(frozen=True, slots=True)
class Recipient:
    """The person asked. ``email`` defaults to the UPN (they differ in some tenants)."""

    upn: str
    email: str | None = None
    display_name: str | None = None
    timezone: str | None = None  # IANA name; None: the configured default

    @property
    def key(self) -> str:
        """The person's key everywhere in Reclaim (lower-cased UPN)."""
        return user_key(self.upn)

    @property
    def address(self) -> str:
        """Where mail goes (and what Slack looks the person up by)."""
        return (self.email or self.upn).strip()


@dataclass(frozen=True, slots=True)
class Sender:
    """Who the mail is from (per policy): a display name and an address."""

    address: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class AskItem:
    """One product (one case) inside an ask.

    ``respond_by`` is the case's response deadline: the links expire then, and
    ``on_no_response`` says what happens if the person stays silent. ``reason``
    replaces the default "You have not used … since …" sentence when given (for
    example the underuse verdict's own words).
    """

    case_id: str
    policy: str
    product: str
    respond_by: dt.datetime
    last_used: dt.date | None = None
    reason: str | None = None
    stage: AskStage = AskStage.ASK
    reminder: int = 0  # 1-based reminder number when stage is REMINDER
    first_asked_on: dt.date | None = None
    on_no_response: Literal["keep", "release"] = "keep"
    restore_window_days: int | None = None  # None or 0: no self-service restore

    def __post_init__(self) -> None:
        if self.respond_by.tzinfo is None or self.respond_by.utcoffset() is None:
            raise ValueError("AskItem.respond_by must be timezone-aware")


@dataclass(frozen=True, slots=True)
class AskRequest:
    """What the runner wants said to one person: one message covering ``items``.

    ``sender`` is the lead policy's sender (None: the mail connector's default).
    ``idempotency_key`` names this message for de-duplication (it becomes the mail's
    Message-ID); by default it is derived from the person, the cases and their stages,
    so a retried send of the same ask carries the same key.
    """

    recipient: Recipient
    items: tuple[AskItem, ...]
    sender: Sender | None = None
    idempotency_key: str | None = None

    def __post_init__(self) -> None:
        if not self.items:
            raise ValueError("an AskRequest needs at least one item")
        ids = [i.case_id for i in self.items]
        if len(set(ids)) != len(ids):
            raise ValueError("an AskRequest lists a case twice")

    @property
    def lead_policy(self) -> str:
        """The policy whose settings (sender, channels, templates) apply to the message:
        the one of the most urgent item."""
        return min(self.items, key=lambda i: (i.respond_by, i.product)).policy

    def key(self) -> str:
        """The idempotency key: the given one, or a digest of person, cases and stages."""
        if self.idempotency_key:
            return self.idempotency_key
        parts = sorted(f"{i.case_id}:{i.stage.value}:{i.reminder}" for i in self.items)
        raw = "\x1f".join(("reclaim-ask/1", self.recipient.key, *parts))
        return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class ResponseLinks:
    """The signed response-page links for one item."""

    page: str  # the response page itself (the person picks there)
    keep: str
    release: str


@dataclass(frozen=True, slots=True)
class EmailContent:
    """Subject, plain-text and HTML bodies (sent as multipart/alternative)."""

    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class SlackContent:
    """Block Kit blocks plus the plain ``text`` Slack shows in notifications."""

    text: str
    blocks: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class AskMessage:
    """One composed message to one person, ready for any channel."""

    request: AskRequest
    links: Mapping[str, ResponseLinks]  # by case id
    email: EmailContent
    teams_card: Mapping[str, Any]  # the AdaptiveCard itself (not the webhook envelope)
    slack: SlackContent
    composed_at: dt.datetime

    @property
    def recipient(self) -> Recipient:
        """The person asked."""
        return self.request.recipient

    @property
    def key(self) -> str:
        """The message's idempotency key (see :meth:`AskRequest.key`)."""
        return self.request.key()

    @property
    def case_ids(self) -> tuple[str, ...]:
        """The cases this message asks about."""
        return tuple(i.case_id for i in self.request.items)
