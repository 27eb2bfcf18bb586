"""Pacing: send at most N messages per second to one peer.

Mail relays (Exchange Online: 30 messages a minute per mailbox), Teams webhooks (four
requests a second) and Slack (about one message a second per conversation) all throttle
bursts. A campaign of thousands of asks must trickle out, not hammer a peer into 429s.
``clock`` and ``sleep`` are injectable so tests check the waits without waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class Pacer:
    """Spaces calls to :meth:`wait` at least ``1 / rate`` seconds apart. Thread-safe.

    ``rate`` is messages per second; ``None`` or ``0`` turns pacing off. The first call
    never waits. Slots are booked under a lock and slept outside it, so concurrent
    senders queue up in order instead of all waking at once.
    """

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if rate is not None and rate < 0:
            raise ValueError("rate must be positive (messages per second), or 0/None for none")
        self.interval = 1.0 / rate if rate else 0.0
        self.clock = clock
        self.sleep = sleep
        self._next: float | None = None
        self._lock = threading.Lock()

    def wait(self) -> float:
        """Block until the next slot is due; returns the seconds waited."""
        if not self.interval:
            return 0.0
        with self._lock:
            now = self.clock()
            slot = now if self._next is None else max(now, self._next)
            self._next = slot + self.interval
        delay = slot - now
        if delay > 0:
            self.sleep(delay)
        return max(delay, 0.0)
