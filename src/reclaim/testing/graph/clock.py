"""Clocks: the server reads time only through these, so tests can move time without sleeping."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """What the server needs from a clock."""

    def time(self) -> float:
        """Seconds since the epoch (may be fake)."""
        ...

    def utcnow(self) -> datetime:
        """The same instant as an aware UTC datetime."""
        ...


class SystemClock:
    """The real wall clock."""

    def time(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def utcnow(self) -> datetime:
        """Now, in UTC."""
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to; starts at the real time so JWT checks stay sane."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()

    def time(self) -> float:
        """The current fake time."""
        with self._lock:
            return self._now

    def utcnow(self) -> datetime:
        """The current fake time as a UTC datetime."""
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        with self._lock:
            self._now += seconds

    def set(self, when: float | datetime) -> None:
        """Jump to an absolute time (epoch seconds or datetime)."""
        with self._lock:
            self._now = when.timestamp() if isinstance(when, datetime) else float(when)


def iso(dt: datetime | None) -> str | None:
    """Format like Graph does: ``2024-01-31T12:00:00Z`` (no fractional seconds)."""
    if dt is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_dt(value: object) -> datetime | None:
    """Parse an ISO 8601 string or datetime from a tenant file into an aware datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
