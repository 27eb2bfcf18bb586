"""Delivering one composed ask over the policy's channels, falling back to email.

Channels are tried in the policy's order and the first that takes the message wins:
one person gets one message, not one per channel. A failing Teams or Slack falls back
to the next channel and finally to email. The result tells the runner what to do:

- ``DELIVERED``: mark the cases asked (``channel`` says where);
- ``RETRY``: nothing delivered, but some channel may work later (Transient);
  ``retry_after`` is the longest wait any peer asked for;
- ``UNDELIVERABLE``: every channel tried refused this person for good (Rejected):
  mark the cases "could not ask". Never read as consent.

A channel that raises StopRun (credentials revoked, webhook gone) is listed in
``broken_channels`` so the runner can stop using it and tell the admin; delivery still
falls back. Only when no channel is left that could work does StopRun propagate.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from reclaim.campaigns.model import AskMessage
from reclaim.connectors.errors import ConnectorError, Rejected, StopRun, Transient

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Sent:
    """What a channel returns when the peer accepted the message."""

    channel: str
    message_id: str | None = None  # Message-ID, Slack ts, ... when the peer gives one
    detail: str = ""


@runtime_checkable
class Channel(Protocol):
    """One way of reaching a person (``email``, ``teams``, ``slack``).

    ``send`` returns :class:`Sent` when the peer accepted the message and otherwise
    raises one of the connector errors: Transient (try later), Rejected (this person
    cannot be reached this way), StopRun (this channel cannot work at all now).
    """

    name: str

    def send(self, ask: AskMessage) -> Sent:
        """Hand ``ask`` to the peer."""
        ...


class DeliveryStatus(StrEnum):
    """The outcome of :func:`deliver`."""

    DELIVERED = "delivered"
    RETRY = "retry"
    UNDELIVERABLE = "undeliverable"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One channel tried: ``outcome`` is ``sent``, ``transient``, ``rejected``, ``stop``."""

    channel: str
    outcome: str
    detail: str = ""
    code: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What happened to one ask; ``attempts`` is the full story, in order."""

    status: DeliveryStatus
    channel: str | None = None
    sent: Sent | None = None
    attempts: tuple[Attempt, ...] = ()
    retry_after: float | None = None
    broken_channels: tuple[str, ...] = field(default=())

    @property
    def delivered(self) -> bool:
        """True when some channel took the message."""
        return self.status is DeliveryStatus.DELIVERED

    def summary(self) -> str:
        """One line for the case history: which channels were tried and how it went."""
        tried = "; ".join(
            f"{a.channel}: {a.outcome}{' (' + a.detail + ')' if a.detail else ''}"
            for a in self.attempts
        )
        return f"{self.status.value} [{tried}]"


def deliver(
    ask: AskMessage,
    channels: Sequence[Channel],
    *,
    fallback: Channel | None = None,
    skip: Sequence[str] = (),
) -> DeliveryResult:
    """Send ``ask`` over the first channel of ``channels`` that takes it.

    ``fallback`` (normally email) is tried last unless it is already in ``channels``.
    ``skip`` names channels known broken in this run (from earlier ``broken_channels``);
    they are not tried. Raises StopRun only if a channel said StopRun and every channel
    failed; a programming error in a channel (anything but a ConnectorError) is not
    swallowed.
    """
    order: list[Channel] = [c for c in channels if c.name not in skip]
    names = {c.name for c in order}
    if fallback is not None and fallback.name not in skip and fallback.name not in names:
        order.append(fallback)
    if not order:
        raise StopRun("no channel is left to deliver campaign messages", code="no-channel")

    attempts: list[Attempt] = []
    broken: list[str] = []
    stop: StopRun | None = None
    for channel in order:
        try:
            sent = channel.send(ask)
        except Transient as exc:
            attempts.append(_attempt(channel, "transient", exc, retry_after=exc.retry_after))
        except Rejected as exc:
            attempts.append(_attempt(channel, "rejected", exc))
        except StopRun as exc:
            attempts.append(_attempt(channel, "stop", exc))
            broken.append(channel.name)
            stop = stop or exc
            log.warning("campaign channel %s cannot work now: %s", channel.name, exc.detail)
        except ConnectorError as exc:  # NotFound, AlreadyDone: not expected from a send
            attempts.append(_attempt(channel, "rejected", exc))
        else:
            attempts.append(Attempt(channel.name, "sent", sent.detail))
            return DeliveryResult(
                status=DeliveryStatus.DELIVERED,
                channel=channel.name,
                sent=sent,
                attempts=tuple(attempts),
                broken_channels=tuple(broken),
            )

    if stop is not None and all(a.outcome == "stop" for a in attempts):
        # Nothing refused the *person*; every channel itself is down. This run must
        # stop (and the admin be told): let the runner see StopRun.
        raise stop
    if any(a.outcome in ("transient", "stop") for a in attempts):
        # Some channel could still reach this person later (it was busy, or broken and
        # may be repaired): "could not ask" would be premature.
        hints = [a.retry_after for a in attempts if a.retry_after is not None]
        return DeliveryResult(
            status=DeliveryStatus.RETRY,
            attempts=tuple(attempts),
            retry_after=max(hints) if hints else None,
            broken_channels=tuple(broken),
        )
    return DeliveryResult(
        status=DeliveryStatus.UNDELIVERABLE,
        attempts=tuple(attempts),
        broken_channels=tuple(broken),
    )


def _attempt(
    channel: Channel, outcome: str, exc: ConnectorError, *, retry_after: float | None = None
) -> Attempt:
    return Attempt(channel.name, outcome, exc.detail, exc.code, retry_after)
