"""Paging convention for every list: ``?limit=&cursor=``, answered with a ``next`` link.

A cursor is opaque to clients (base64url JSON of the last row's sort key): follow
``next`` until it is ``null``. Keyset paging, not offsets, so a page is as fast at
row 10 000 000 as at row 0, and rows added meanwhile neither repeat nor go missing.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from starlette.datastructures import URL

from reclaim.web.problems import Problem

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def encode_cursor(key: dict[str, Any]) -> str:
    """An opaque cursor for the sort key ``key``."""
    raw = json.dumps(key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str | None) -> dict[str, Any]:
    """The sort key inside ``cursor`` ({} for none); a 400 problem if it is not ours."""
    if not cursor:
        return {}
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError):
        raise Problem(400, "The cursor is not valid; start again without one.") from None
    if not isinstance(key, dict):
        raise Problem(400, "The cursor is not valid; start again without one.")
    return key


def cursor_int(key: dict[str, Any], name: str) -> int | None:
    """An integer member of a decoded cursor, checked."""
    value = key.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise Problem(400, "The cursor is not valid; start again without one.")
    return value


def next_link(url: URL, cursor: str | None) -> str | None:
    """The same request with ``cursor`` replaced, as a path and query (or None)."""
    if cursor is None:
        return None
    nxt = url.include_query_params(cursor=cursor)
    return f"{nxt.path}?{nxt.query}"
