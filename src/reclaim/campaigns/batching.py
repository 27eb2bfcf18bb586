"""Batching: at most one message per person per day, across every policy.

Someone with three idle licenses gets one message listing the three, each with its own
buttons, not three messages in a morning. Someone already written to today waits until
tomorrow. Pure: the runner passes what is due, when each person last got a message,
``now`` and a time zone, and sends what comes back as ``ready``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from reclaim.campaigns.model import AskItem, AskRequest, Recipient
from reclaim.domain.names import user_key

#: Slack allows 50 blocks a message and the default layout uses 4 per product; a
#: longer list is also more than anyone reads. Beyond this, items wait a day.
MAX_ITEMS_PER_MESSAGE = 10


@dataclass(frozen=True, slots=True)
class DueAsk:
    """One item that is due to be sent (a first ask, a reminder or a final notice)."""

    recipient: Recipient
    item: AskItem


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """``ready``: one request per person to send now; ``deferred``: wait for another day."""

    ready: tuple[AskRequest, ...]
    deferred: tuple[DueAsk, ...]


def _urgency(item: AskItem) -> tuple[int, dt.datetime, str, str]:
    # Final notices first, then the earliest deadline: if a message is cut at
    # MAX_ITEMS_PER_MESSAGE, what is left out is what can best wait.
    rank = {"final": 0, "reminder": 1, "ask": 2}[item.stage.value]
    return (rank, item.respond_by, item.product.lower(), item.case_id)


def batch_by_person(
    due: Iterable[DueAsk],
    *,
    now: dt.datetime,
    tz: str | ZoneInfo,
    last_sent: Mapping[str, dt.datetime] | None = None,
    tz_of: Callable[[Recipient], str | ZoneInfo | None] | None = None,
    max_items: int = MAX_ITEMS_PER_MESSAGE,
) -> BatchPlan:
    """Group ``due`` items into one :class:`AskRequest` per person.

    ``last_sent`` maps a person's key (lower-cased UPN) to when they were last sent any
    campaign message; if that was on the same local calendar day as ``now``, all their
    items are deferred. The day is judged in the person's own time zone when ``tz_of``
    (or ``Recipient.timezone``) gives one, else in ``tz``. At most ``max_items`` go into
    one message, the most urgent first; the rest are deferred. A case listed twice is
    kept once. The person's details are taken from their first due item.
    """
    if max_items < 1:
        raise ValueError("max_items must be at least 1")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    sent = {user_key(k): v for k, v in (last_sent or {}).items()}
    people: dict[str, tuple[Recipient, dict[str, DueAsk]]] = {}
    for entry in due:
        key = entry.recipient.key
        recipient, items = people.setdefault(key, (entry.recipient, {}))
        items.setdefault(entry.item.case_id, entry)

    ready: list[AskRequest] = []
    deferred: list[DueAsk] = []
    for key in sorted(people):
        recipient, items = people[key]
        zone_name = (tz_of(recipient) if tz_of else None) or recipient.timezone or tz
        zone = ZoneInfo(zone_name) if isinstance(zone_name, str) else zone_name
        entries = sorted(items.values(), key=lambda e: _urgency(e.item))
        last = sent.get(key)
        if last is not None and last.astimezone(zone).date() == now.astimezone(zone).date():
            deferred.extend(entries)
            continue
        chosen, rest = entries[:max_items], entries[max_items:]
        ready.append(AskRequest(recipient=recipient, items=tuple(e.item for e in chosen)))
        deferred.extend(rest)
    return BatchPlan(ready=tuple(ready), deferred=tuple(deferred))
