"""Client-side pacing: stay under Graph's identity and access limits instead of hitting them.

Entra throttles per app + tenant with token buckets: resource units (RU) per 10 s by
tenant size (S/M/L: 3,500 / 5,000 / 8,000) and 3,000 writes per 2 min 30 s. Each request
has a documented cost (:func:`request_cost`). Before sending, the transport asks a
:class:`RateBudget` for a reservation and waits as long as it says, so a run flows at
the sustainable rate rather than bouncing off 429s. Source:
https://learn.microsoft.com/graph/throttling-limits#identity-and-access-service-limits

The budget is a protocol so a shared one (several workers, one database row) can replace
the in-process :class:`TokenBucketBudget` later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from reclaim.connectors.graph.settings import TenantSize

RESOURCE_UNITS_PER_10S: dict[str, int] = {"S": 3500, "M": 5000, "L": 8000}
WRITES_PER_WINDOW = 3000
WRITE_WINDOW_SECONDS = 150.0
READ_WINDOW_SECONDS = 10.0
DEFAULT_HEADROOM = 0.95  # keep 5 % for other tools using the same app registration

# Base costs from the documentation table; "me/x" costs apply to "users/{id}/x" too.
_GET_COSTS = {
    ("users",): 2,
    ("groups", "*", "members"): 3,
    ("groups", "*", "transitivemembers"): 5,
    ("users", "*", "memberof"): 2,
    ("users", "*", "transitivememberof"): 2,
    ("users", "*", "licensedetails"): 2,
    ("users", "*", "ownedobjects"): 2,
    ("subscribedskus",): 3,
    ("applications",): 2,
    ("oauth2permissiongrants",): 2,
}
_READ_ACTIONS = {  # POST actions that read: resource units, no write
    "checkmembergroups": 4,
    "checkmemberobjects": 4,
    "getmembergroups": 2,
    "getmemberobjects": 2,
    "getbyids": 3,
    "ismemberof": 4,
}
# Not identity-and-access resources: they have request-count limits of their own.
_OTHER_SERVICES = ("reports", "auditlogs", "$batch")


@dataclass(frozen=True)
class RequestCost:
    """What one request takes from the app + tenant budget."""

    resource_units: int
    writes: int = 0

    def __add__(self, other: RequestCost) -> RequestCost:
        return RequestCost(self.resource_units + other.resource_units, self.writes + other.writes)


FREE = RequestCost(0, 0)


def is_read_action(path: str) -> bool:
    """Is this POST one of the directory actions that only read (checkMemberGroups ...)?"""
    last = _segments(path)[-1:] or [""]
    return last[0] in _READ_ACTIONS


def _segments(path: str) -> list[str]:
    raw = urlsplit(path).path if "://" in path else path.split("?", 1)[0]
    segs = [unquote(s).lower() for s in raw.strip("/").split("/") if s]
    if segs and segs[0] in ("v1.0", "beta"):
        segs = segs[1:]
    # users('x') is the same resource as users/x
    out: list[str] = []
    for s in segs:
        if "('" in s and s.endswith("')"):
            name, key = s.split("(", 1)
            out += [name, key]
        else:
            out.append(s)
    return out


def _matches(pattern: tuple[str, ...], segs: list[str]) -> bool:
    return len(pattern) == len(segs) and all(
        p in ("*", s) for p, s in zip(pattern, segs, strict=True)
    )


def _get_base_cost(segs: list[str]) -> int:
    for pattern, cost in _GET_COSTS.items():
        n = len(pattern)
        # a cast (/members/microsoft.graph.user) or /$count costs what the list costs
        tail_ok = all(s == "$count" or s.startswith("microsoft.graph.") for s in segs[n:])
        if len(segs) >= n and _matches(pattern, segs[:n]) and tail_ok:
            return cost
    return 1


def request_cost(method: str, path: str, *, params: Mapping[str, str] | None = None) -> RequestCost:
    """The documented cost of one request; ``path`` may carry its query (nextLinks do)."""
    segs = _segments(path)
    if not segs or segs[0] in _OTHER_SERVICES:
        return FREE
    query = {k.lstrip("$").lower(): v for k, v in (params or {}).items()}
    if "?" in path:
        query.update(
            {
                k.lstrip("$").lower(): v
                for k, v in parse_qsl(path.split("?", 1)[1], keep_blank_values=True)
            }
        )
    method = method.upper()
    writes = 0
    if method == "GET":
        base = _get_base_cost(segs)
    elif method == "POST" and segs[-1] in _READ_ACTIONS:
        base = _READ_ACTIONS[segs[-1]]
    else:
        base, writes = 1, 1
    ru = base - ("select" in query) + ("expand" in query)
    top = query.get("top", "")
    if top.isdigit() and int(top) < 20:
        ru -= 1
    return RequestCost(max(ru, 1), writes)


class RateBudget(Protocol):
    """Pacing shared by every request of one app + tenant (in this process, or beyond)."""

    def reserve(self, cost: RequestCost) -> float:
        """Book ``cost`` now; return the seconds to wait before sending (0: send now)."""
        ...

    def throttled(self, retry_after: float | None) -> None:
        """Graph said 429: hold everyone back for ``retry_after`` seconds (if given)."""
        ...


class Unlimited:
    """No pacing (tests of the server's own throttling, or limits enforced elsewhere)."""

    def reserve(self, cost: RequestCost) -> float:
        """Always send now."""
        return 0.0

    def throttled(self, retry_after: float | None) -> None:
        """Nothing to remember."""


@dataclass(frozen=True)
class BudgetLimits:
    """Capacities and windows of the two buckets (resource units, writes)."""

    resource_units: float
    resource_unit_window: float = READ_WINDOW_SECONDS
    writes: float = WRITES_PER_WINDOW * DEFAULT_HEADROOM
    write_window: float = WRITE_WINDOW_SECONDS

    @classmethod
    def for_tenant(
        cls, size: TenantSize, *, headroom: float = DEFAULT_HEADROOM, scale: float = 1.0
    ) -> BudgetLimits:
        """The documented limits for a tenant size, times ``headroom`` (and ``scale``)."""
        if not 0 < headroom <= 1:
            raise ValueError("headroom must be in (0, 1]")
        return cls(
            resource_units=RESOURCE_UNITS_PER_10S[size] * headroom * scale,
            writes=WRITES_PER_WINDOW * headroom * scale,
        )


class _Bucket:
    def __init__(self, capacity: float, window: float, now: float, fill: float) -> None:
        self.capacity = capacity
        self.rate = capacity / window
        self.level = capacity * fill
        self.updated = now

    def book(self, amount: float, now: float) -> float:
        """Take ``amount`` (going into debt if need be); seconds until the debt is paid."""
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
            self.updated = now
        self.level -= amount
        return 0.0 if self.level >= 0 else -self.level / self.rate


class TokenBucketBudget:
    """In-process token buckets mirroring Graph's, thread-safe.

    Reservations are booked at once, so concurrent senders get successive slots rather
    than all waking together; a 429 pauses everyone for its Retry-After. ``initial_fill``
    (0-1) is how full the buckets start.
    """

    def __init__(
        self,
        limits: BudgetLimits,
        *,
        clock: Callable[[], float] = time.monotonic,
        initial_fill: float = 1.0,
    ) -> None:
        if not 0 <= initial_fill <= 1:
            raise ValueError("initial_fill must be between 0 and 1")
        self.limits = limits
        self._clock = clock
        now = clock()
        # Full by default, as Graph's own buckets are after a quiet spell; a run that
        # closely follows another can start lower (or share one budget: see RateBudget).
        self._ru = _Bucket(limits.resource_units, limits.resource_unit_window, now, initial_fill)
        self._writes = _Bucket(limits.writes, limits.write_window, now, initial_fill)
        self._paused_until = now
        self._lock = threading.Lock()

    def reserve(self, cost: RequestCost) -> float:
        """Book the cost in both buckets; the wait is the longer of the two debts."""
        with self._lock:
            now = self._clock()
            wait = max(0.0, self._paused_until - now)
            if cost.resource_units:
                wait = max(wait, self._ru.book(cost.resource_units, now))
            if cost.writes:
                wait = max(wait, self._writes.book(cost.writes, now))
            return wait

    def throttled(self, retry_after: float | None) -> None:
        """Pause every sender until Graph's Retry-After has passed."""
        if retry_after is None or retry_after <= 0:
            return
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + retry_after)
