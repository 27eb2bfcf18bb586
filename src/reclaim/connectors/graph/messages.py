"""Graph requests and responses as plain values, and the URL rules they follow.

A :class:`GraphRequest` is relative to the versioned root (``/users/{id}``) or, for a
``@odata.nextLink``, an absolute URL followed verbatim. Query strings are built here, not
by httpx, because Graph's quirks live in them: ``$`` kept literal, spaces as ``%20``
(never ``+``), ``#`` as ``%23`` (a raw ``#`` would start the URL fragment and cut a guest
UPN short), and OData string literals with ``'`` doubled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from reclaim.connectors.errors import ConnectorError
from reclaim.connectors.graph.budget import is_read_action
from reclaim.connectors.graph.errors import GraphFailure, failure_from, translate

# Unreserved in a query value for Graph: OData punctuation stays readable in logs.
_QUERY_SAFE = "'(),:@/$*!;"
# In a path segment `+`, `$`, `'`, `(`, `)` and `@` are literal; `#`, `%`, `?`, `/` are not.
_PATH_SAFE = "@'$()!*+,;=:"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def is_guid(value: str) -> bool:
    """Is ``value`` an object id (GUID) rather than a UPN?"""
    return bool(_GUID.match(value))


def odata_string(value: str) -> str:
    """An OData string literal, single quotes doubled: ``o'brien`` → ``'o''brien'``."""
    return "'" + value.replace("'", "''") + "'"


def path_segment(value: str) -> str:
    """Percent-encode one path segment the way Graph expects (``#`` → ``%23``)."""
    return quote(value, safe=_PATH_SAFE)


def user_path(key: str) -> str:
    """``/users/{id | upn}``; a UPN starting with ``$`` needs ``/users('{upn}')``.

    Graph reads ``/users/$x`` as a system query segment, so such UPNs use the
    key-in-parentheses form (https://learn.microsoft.com/graph/api/user-get).
    """
    if key.startswith("$"):
        return f"/users({path_segment(odata_string(key))})"
    return f"/users/{path_segment(key)}"


def query_string(params: Mapping[str, str]) -> str:
    """``$select=a,b&$top=999``: keys as given, values percent-encoded for Graph."""
    return "&".join(f"{k}={quote(str(v), safe=_QUERY_SAFE)}" for k, v in params.items())


@dataclass(frozen=True)
class GraphRequest:
    """One Graph call (or one ``$batch`` part)."""

    method: str
    path: str  # "/users/x" relative to the versioned root, or an absolute nextLink URL
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None

    @property
    def is_absolute(self) -> bool:
        """Is ``path`` a full URL (a link Graph gave us, to be followed verbatim)?"""
        return "://" in self.path

    @property
    def target(self) -> str:
        """Path plus query, as it goes after the versioned root (or the absolute URL)."""
        if not self.params:
            return self.path
        sep = "&" if "?" in self.path else "?"
        return f"{self.path}{sep}{query_string(self.params)}"

    @property
    def is_write(self) -> bool:
        """Does this call change the directory? (reads may POST: checkMemberGroups, $batch)"""
        method = self.method.upper()
        if method == "GET":
            return False
        if method == "POST" and self.path.rstrip("/").lower().endswith("/$batch"):
            return any(part.is_write for part in batch_parts(self.body))
        return not (method == "POST" and is_read_action(self.path))

    def removes_object(self) -> bool:
        """A DELETE without ``/$ref``: it would delete the object itself, never allowed.

        Also checks the parts of a ``$batch``.
        """
        if self.method.upper() == "DELETE":
            return not self.path.split("?", 1)[0].rstrip("/").endswith("/$ref")
        if self.method.upper() == "POST" and self.path.rstrip("/").lower().endswith("/$batch"):
            return any(part.removes_object() for part in batch_parts(self.body))
        return False


def batch_parts(body: Any) -> list[GraphRequest]:
    """The parts of a ``$batch`` body as requests (for the write guard and costs)."""
    parts = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(parts, list):
        return []
    return [
        GraphRequest(str(p.get("method", "GET")), str(p.get("url", "")), body=p.get("body"))
        for p in parts
        if isinstance(p, dict)
    ]


@dataclass
class GraphResponse:
    """What Graph answered (to a request or a batch part); ``body`` is parsed JSON if JSON."""

    status: int
    headers: Mapping[str, str]  # lower-case names
    body: Any
    method: str = ""
    path: str = ""  # relative to the versioned root, with its query

    @property
    def ok(self) -> bool:
        """2xx?"""
        return 200 <= self.status < 300

    @property
    def failure(self) -> GraphFailure:
        """Graph's error code and message (meaningful when not :attr:`ok`)."""
        return failure_from(self.status, headers=self.headers, body=self.body)

    def error(self) -> ConnectorError:
        """The connector error this failure translates to."""
        return translate(self.failure, method=self.method, path=self.path)

    def raise_for_error(self) -> None:
        """Raise the translated connector error unless the call succeeded."""
        if not self.ok:
            raise self.error()

    def json(self) -> dict[str, Any]:
        """The body as a JSON object (``{}`` for an empty 2xx)."""
        return self.body if isinstance(self.body, dict) else {}
