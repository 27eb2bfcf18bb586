"""Fault injection: rules set at run time (Python API or ``/_testing/faults``).

Kinds:
- ``status``: answer with ``status`` (500, 503, 429 ...) instead of serving the request,
  with ``Retry-After`` when ``retry_after`` is set. Applies to batch parts too unless
  ``batch_parts`` is False.
- ``latency``: wait ``seconds`` before serving.
- ``hang``: wait ``seconds`` (to trip client timeouts), then serve normally.
- ``reset``: drop the TCP connection (RST) without answering.
- ``token``: make the token endpoint fail with ``status``.

Each rule fires ``count`` times (None = until cleared) for requests whose method matches
``method`` (if given) and whose path contains a match of the regex ``path`` (if given).
"""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass
from typing import Any

KINDS = ("status", "latency", "hang", "reset", "token")


@dataclass
class FaultRule:
    """One injected fault."""

    kind: str
    count: int | None = 1
    status: int = 503
    retry_after: float | None = None
    seconds: float = 0.0
    method: str | None = None
    path: str | None = None
    batch_parts: bool = True
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        """Does this rule target the request?"""
        if self.method and self.method.upper() != method.upper():
            return False
        return not self.path or re.search(self.path, path) is not None


class Faults:
    """The set of active rules; thread-safe, shared by the HTTP layer and the dispatcher."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self.wake = threading.Event()  # set to cut hangs short (clear() / server stop)

    def add(self, rule: FaultRule) -> FaultRule:
        """Add a rule (see module docs for the kinds)."""
        if rule.kind not in KINDS:
            raise ValueError(f"unknown fault kind {rule.kind!r}; expected one of {KINDS}")
        with self._lock:
            self._rules.append(rule)
            self.wake.clear()
        return rule

    def fail_next(
        self,
        count: int = 1,
        status: int = 503,
        *,
        retry_after: float | None = None,
        method: str | None = None,
        path: str | None = None,
        batch_parts: bool = True,
    ) -> FaultRule:
        """The next ``count`` matching Graph requests get ``status`` (e.g. 500, 503)."""
        return self.add(
            FaultRule("status", count, status, retry_after, 0.0, method, path, batch_parts)
        )

    def throttle_next(
        self, count: int = 1, *, retry_after: float | None = None, path: str | None = None
    ) -> FaultRule:
        """The next ``count`` requests get 429 TooManyRequests (no Retry-After unless given)."""
        return self.add(FaultRule("status", count, 429, retry_after, path=path))

    def add_latency(
        self, seconds: float, count: int | None = None, *, path: str | None = None
    ) -> FaultRule:
        """Delay matching responses by ``seconds`` (every one until cleared by default)."""
        return self.add(FaultRule("latency", count, seconds=seconds, path=path))

    def hang_next(self, seconds: float, count: int = 1, *, path: str | None = None) -> FaultRule:
        """Hold the next ``count`` requests for ``seconds`` before answering."""
        return self.add(FaultRule("hang", count, seconds=seconds, path=path))

    def reset_next(self, count: int = 1, *, path: str | None = None) -> FaultRule:
        """Drop the connection of the next ``count`` requests without an answer."""
        return self.add(FaultRule("reset", count, path=path))

    def fail_token_endpoint(
        self, count: int | None = 1, status: int = 503, *, retry_after: float | None = None
    ) -> FaultRule:
        """Make the token endpoint fail (``status`` 400/401 gives an AAD error body)."""
        return self.add(FaultRule("token", count, status, retry_after))

    def clear(self) -> None:
        """Remove every rule and release hanging requests."""
        with self._lock:
            self._rules.clear()
        self.wake.set()

    def rules(self) -> list[dict[str, Any]]:
        """The active rules, as dicts (for the admin endpoint)."""
        with self._lock:
            return [asdict(r) for r in self._rules]

    def take(
        self, kinds: tuple[str, ...], method: str, path: str, *, batch_part: bool = False
    ) -> FaultRule | None:
        """Consume one firing of the first matching rule of ``kinds``, if any."""
        with self._lock:
            for rule in self._rules:
                if rule.kind not in kinds or not rule.matches(method, path):
                    continue
                if batch_part and not rule.batch_parts:
                    continue
                rule.fired += 1
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        self._rules.remove(rule)
                return rule
        return None
