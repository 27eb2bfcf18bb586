"""``Idempotency-Key`` for uploads: a retried request gets the first answer, not a rerun.

Keys are per caller and endpoint (one token cannot replay or block another's). The
first request with a key *reserves* it before doing any work; a second request with
the same key then gets

- the stored response, if the first one finished (header ``Idempotent-Replayed``);
- 409 if the first one is still running;
- 422 if its body differs from the first one's: a key names one request, and reusing
  it for another is a client bug that must not pass silently.

Only successful responses are kept. A failed request frees its key, so the client can
retry with the same key once the cause is fixed. Keys are forgotten after
``RETENTION`` seconds; a reservation whose request died (the process crashed) is
taken over after ``STALE``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, delete, select, update
from sqlalchemy.exc import IntegrityError

from reclaim.store.web_tables import idempotency_keys as keys
from reclaim.web.problems import Problem

HEADER = "Idempotency-Key"
RETENTION = 7 * 24 * 3600
STALE = 3600
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")  # visible ASCII, as the IETF draft suggests


@dataclass(frozen=True)
class Slot:
    """One (caller, endpoint, key)."""

    principal: str
    endpoint: str
    key: str

    def where(self) -> Any:
        """SQL condition selecting this slot's row."""
        return and_(
            keys.c.principal == self.principal,
            keys.c.endpoint == self.endpoint,
            keys.c.key == self.key,
        )


@dataclass(frozen=True)
class Replay:
    """The stored response to send again."""

    status_code: int
    body: dict[str, Any]


def check_key(key: str) -> str:
    """The key, or a 400 problem if it is empty, too long or not visible ASCII."""
    if not _KEY.match(key):
        raise Problem(
            400,
            f"{HEADER} must be 1 to 200 visible ASCII characters (a UUID is a good choice).",
            kind="idempotency-key",
        )
    return key


def reserve(engine: Engine, slot: Slot, *, request_hash: str, now: int) -> Replay | None:
    """Reserve the slot (None: go ahead), or the stored response to replay."""
    with engine.begin() as conn:
        conn.execute(delete(keys).where(keys.c.created < now - RETENTION))
        try:
            with conn.begin_nested():
                conn.execute(
                    keys.insert().values(
                        principal=slot.principal,
                        endpoint=slot.endpoint,
                        key=slot.key,
                        request_hash=request_hash,
                        created=now,
                    )
                )
            return None
        except IntegrityError:
            pass
        row = conn.execute(select(keys).where(slot.where())).one()
        if row.request_hash != request_hash:
            detail = (
                f"This {HEADER} was used for a request with a different body; "
                "use a new key for a new request."
            )
            raise Problem(
                422,
                detail,
                kind="idempotency-key-reused",
                # The same shape as any 422: which input was wrong.
                errors=[{"location": "header", "field": HEADER, "detail": detail}],
            )
        if row.status_code is not None:
            return Replay(status_code=row.status_code, body=json.loads(row.response))
        if row.created > now - STALE:
            raise Problem(
                409,
                f"A request with this {HEADER} is still being processed; retry later.",
                kind="idempotency-key-in-flight",
                headers={"Retry-After": "5"},
            )
        # The first request died without finishing: this one takes the slot over.
        conn.execute(update(keys).where(slot.where()).values(created=now))
        return None


def complete(engine: Engine, slot: Slot, *, status_code: int, body: dict[str, Any]) -> None:
    """Store the response for replays."""
    with engine.begin() as conn:
        conn.execute(
            update(keys)
            .where(slot.where())
            .values(status_code=status_code, response=json.dumps(body, default=str))
        )


def release(engine: Engine, slot: Slot) -> None:
    """Free the slot after a failed request, so that a fixed retry may use the key."""
    with engine.begin() as conn:
        conn.execute(delete(keys).where(slot.where(), keys.c.status_code.is_(None)))
