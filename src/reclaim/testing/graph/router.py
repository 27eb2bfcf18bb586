"""Requests, responses and the route table shared by plain requests and ``$batch`` parts.

Graph paths are matched segment by segment, case-insensitively, after the key-as-segment
form ``users('x')`` has been rewritten to ``users/x``. Handlers are plain functions
``handler(req, *captured) -> GraphResponse`` that raise :class:`GraphError` on failure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

if TYPE_CHECKING:
    from reclaim.testing.graph.state import ServerState

ODATA_JSON = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;"
    "charset=utf-8"
)
_KEY_SEGMENT = re.compile(r"^(?P<name>[^()]+)\((?P<key>.*)\)$")


@dataclass
class GraphRequest:
    """One Graph API call: a real HTTP request or one part of a ``$batch``."""

    method: str
    path: str  # decoded, relative to the version root, e.g. "/users/abc"
    segments: list[str]
    query: dict[str, str]  # keys lower-cased and without "$"
    raw_query: str
    headers: dict[str, str]  # keys lower-cased
    body: Any
    state: ServerState
    base_url: str  # e.g. "https://127.0.0.1:8443"
    client_id: str = ""
    request_id: str = ""
    client_request_id: str = ""
    batch_id: str | None = None
    part_id: str | None = None

    @property
    def version_root(self) -> str:
        """Absolute URL of the v1.0 root, for links that clients follow verbatim."""
        return f"{self.base_url}/v1.0"

    @property
    def eventual(self) -> bool:
        """Did the caller send ``ConsistencyLevel: eventual``?"""
        return self.headers.get("consistencylevel", "").lower() == "eventual"


@dataclass
class GraphResponse:
    """What a handler returns; the HTTP layer and ``$batch`` both serialize it."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = ODATA_JSON


Handler = Callable[..., GraphResponse]


@dataclass
class Route:
    """A method + segment pattern (``*`` captures one segment) and its handler."""

    method: str
    pattern: tuple[str, ...]
    handler: Handler
    base_cost: int = 1  # identity and access resource units before $select/$top adjustments
    service: str = "directory"  # which throttling family the route belongs to
    name: str = ""

    def match(self, method: str, segments: list[str]) -> list[str] | None:
        """Captured segments if this route serves the request, else None."""
        if method != self.method or len(segments) != len(self.pattern):
            return None
        captured: list[str] = []
        for pat, seg in zip(self.pattern, segments, strict=True):
            if pat == "*":
                captured.append(seg)
            elif pat.lower() != seg.lower():
                return None
        return captured


def split_path(raw_path: str) -> list[str]:
    """Split a raw (still percent-encoded) path into decoded segments.

    Decoding happens per segment so an encoded ``/`` stays inside its segment, and the
    ``users('key')`` form becomes two segments with the quotes (doubled inside) removed.
    """
    out: list[str] = []
    for raw in raw_path.strip("/").split("/"):
        if raw == "":
            continue
        seg = unquote(raw)
        m = _KEY_SEGMENT.match(seg)
        if m and m.group("name").lower() in ("users", "groups", "directoryobjects"):
            key = m.group("key")
            if len(key) >= 2 and key[0] == key[-1] == "'":
                key = key[1:-1].replace("''", "'")
            out.extend([m.group("name"), key])
        else:
            out.append(seg)
    return out


def parse_query(raw_query: str) -> dict[str, str]:
    """Query options keyed without ``$`` and lower-cased (``$top`` and ``top`` alike)."""
    out: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        out[key.lstrip("$").lower()] = value
    return out


def find_route(
    routes: list[Route], method: str, segments: list[str]
) -> tuple[Route, list[str]] | None:
    """The first route that serves ``method`` on ``segments``, with its captures."""
    for route in routes:
        captured = route.match(method, segments)
        if captured is not None:
            return route, captured
    return None


def path_exists(routes: list[Route], segments: list[str]) -> bool:
    """Is there a route for these segments with some other method? (405 vs 404)."""
    return any(r.match(r.method, segments) is not None for r in routes)


def json_response(body: Any, status: int = 200, **headers: str) -> GraphResponse:
    """A JSON response with Graph's OData content type."""
    return GraphResponse(status, body, dict(headers))


def no_content() -> GraphResponse:
    """204, as writes answer."""
    return GraphResponse(204, None, {}, "")
