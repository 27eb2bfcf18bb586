"""The request log: every request the server saw, batch parts as entries of their own."""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class RequestRecord:
    """One request (or batch part) and how it was answered."""

    seq: int
    time: float
    method: str
    path: str  # decoded path, e.g. "/v1.0/groups/g/members/u/$ref"
    query: str
    status: int
    client_id: str = ""
    request_id: str = ""
    batch_id: str | None = None  # request-id of the enclosing $batch
    part_id: str | None = None
    fault: str | None = None  # kind of injected fault that shaped the answer, if any
    resource_units: int = 0
    refused_user_delete: bool = False  # DELETE .../members/{id} without /$ref

    @property
    def is_batch_part(self) -> bool:
        """Was this evaluated as part of a ``$batch``?"""
        return self.batch_id is not None

    @property
    def ok(self) -> bool:
        """2xx?"""
        return 200 <= self.status < 300


class RequestLog:
    """Append-only, thread-safe list of :class:`RequestRecord` with query helpers."""

    def __init__(self) -> None:
        self._records: list[RequestRecord] = []
        self._lock = threading.Lock()

    def add(self, **fields: Any) -> RequestRecord:
        """Append a record (``seq`` is assigned here)."""
        with self._lock:
            rec = RequestRecord(seq=len(self._records) + 1, **fields)
            self._records.append(rec)
            return rec

    def clear(self) -> None:
        """Forget everything logged so far."""
        with self._lock:
            self._records.clear()

    def all(self) -> list[RequestRecord]:
        """A snapshot of every record, oldest first."""
        with self._lock:
            return list(self._records)

    def __len__(self) -> int:
        return len(self.all())

    def find(
        self,
        method: str | None = None,
        path: str | None = None,
        *,
        status: int | None = None,
        ok: bool | None = None,
        batch_part: bool | None = None,
    ) -> list[RequestRecord]:
        """Records matching all given criteria; ``path`` is a regex searched in the path."""
        out = []
        for r in self.all():
            if method and r.method != method.upper():
                continue
            if path and not re.search(path, r.path):
                continue
            if status is not None and r.status != status:
                continue
            if ok is not None and r.ok != ok:
                continue
            if batch_part is not None and r.is_batch_part != batch_part:
                continue
            out.append(r)
        return out

    def count(self, method: str | None = None, path: str | None = None, **kw: Any) -> int:
        """How many records :meth:`find` would return."""
        return len(self.find(method, path, **kw))

    def removals(self, *, ok: bool | None = True) -> list[RequestRecord]:
        """Membership removals (``DELETE .../members/{id}/$ref``), successful ones by default."""
        return self.find("DELETE", r"/groups/[^/]+/members/[^/]+/\$ref$", ok=ok)

    def removals_of(
        self, group_id: str, user_id: str, *, ok: bool | None = True
    ) -> list[RequestRecord]:
        """Removals of one user from one group."""
        pattern = rf"/groups/{re.escape(group_id)}/members/{re.escape(user_id)}/\$ref$"
        return self.find("DELETE", pattern, ok=ok)

    def refused_user_deletes(self) -> list[RequestRecord]:
        """``DELETE /groups/{g}/members/{u}`` without ``/$ref``: must never happen."""
        return [r for r in self.all() if r.refused_user_delete]

    def as_dicts(self) -> list[dict[str, Any]]:
        """JSON-ready records (for the admin endpoint)."""
        return [asdict(r) | {"is_batch_part": r.is_batch_part} for r in self.all()]
