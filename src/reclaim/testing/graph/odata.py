"""Query options shared by the collection routes: ``$select``, ``$top``, ``$count``, paging.

Paging uses opaque ``$skiptoken`` values kept server-side and bound to the exact request
they continue, so a client that rebuilds a link instead of following ``@odata.nextLink``
verbatim gets the same 400 a stale token gets from Graph.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from reclaim.testing.graph.errors import PAGE_EXPIRED, GraphError, bad_request
from reclaim.testing.graph.filters import Filter, parse_filter
from reclaim.testing.graph.router import GraphRequest


def parse_select(req: GraphRequest, allowed: Iterable[str], type_name: str) -> list[str] | None:
    """The ``$select`` list with canonical casing, or None; unknown names are a 400."""
    raw = req.query.get("select")
    if raw is None or raw.strip() == "":
        return None
    canon = {name.lower(): name for name in allowed}
    out: list[str] = []
    for name in (p.strip() for p in raw.split(",")):
        if not name:
            continue
        if name.lower() not in canon:
            raise bad_request(
                f"Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'."
            )
        out.append(canon[name.lower()])
    return out


def parse_top(req: GraphRequest, default: int, maximum: int) -> int:
    """Page size from ``$top``: Graph rejects values outside 1..maximum with a 400."""
    raw = req.query.get("top")
    if raw is None:
        return default
    try:
        top = int(raw)
    except ValueError:
        raise bad_request(f"Invalid page size specified: '{raw}'.") from None
    if top < 1 or top > maximum:
        raise bad_request(
            f"Invalid page size specified: '{top}'. Must be between 1 and {maximum} inclusive."
        )
    return top


def advanced_ok(req: GraphRequest) -> bool:
    """Advanced query parameters: the ConsistencyLevel header *and* ``$count=true``."""
    return req.eventual and req.query.get("count", "").lower() == "true"


def parse_filter_option(req: GraphRequest, *, relationship: bool = False) -> Filter | None:
    """Parse ``$filter``; operators needing advanced queries are refused without them.

    On relationships (``/members``, ``/memberOf``) every filter is an advanced query.
    """
    raw = req.query.get("filter")
    if raw is None:
        return None
    flt = parse_filter(raw)
    needs = list(flt.advanced)
    if relationship and not needs:
        needs = ["filter on a relationship"]
    if needs and not advanced_ok(req):
        raise GraphError(
            400,
            "Request_UnsupportedQuery",
            f"Operator '{needs[0]}' is not supported because the required parameters might be "
            "missing. Try adding $count=true query parameter and ConsistencyLevel:eventual "
            "header. Refer to https://aka.ms/graph-docs/advanced-queries for more information",
        )
    return flt


@dataclass
class _Cursor:
    route: str  # path + the query without $skiptoken: the link must be followed verbatim
    after: str  # id of the last object already returned


class PageStore:
    """Server-side state behind ``$skiptoken`` values."""

    def __init__(self) -> None:
        self._tokens: dict[str, _Cursor] = {}
        self._lock = threading.Lock()

    def issue(self, route: str, after: str) -> str:
        """A new opaque token continuing after ``after``."""
        token = "RFNwdA" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = _Cursor(route, after)
        return token

    def resolve(self, token: str, route: str) -> str:
        """The id to continue after; 400 for unknown tokens or altered links."""
        with self._lock:
            cur = self._tokens.get(token)
        if cur is None or cur.route != route:
            raise GraphError(400, "Directory_ExpiredPageToken", PAGE_EXPIRED)
        return cur.after


def route_key(req: GraphRequest) -> str:
    """The request minus its skiptoken (decoded, sorted): what a token is bound to."""
    rest = sorted((k, v) for k, v in req.query.items() if k != "skiptoken")
    return f"{req.path.lower()}?{rest!r}"


def _is_skiptoken(part: str) -> bool:
    key = part.split("=", 1)[0].lower()
    return key in ("$skiptoken", "%24skiptoken", "skiptoken")


def page(
    req: GraphRequest,
    ids: list[str],
    render: Callable[[str], dict[str, Any]],
    *,
    top: int,
    context: str,
    count: int | None = None,
    ordered: bool = False,
) -> dict[str, Any]:
    """One page of ``ids`` with ``@odata.nextLink`` if more remain.

    Ids are sorted so the cursor survives removals between pages; ``ordered=True`` keeps
    the given order instead (for immutable lists such as sign-in logs).
    """
    if not ordered:
        ids = sorted(ids)
    token = req.query.get("skiptoken")
    if token:
        after = req.state.pages.resolve(token, route_key(req))
        if ordered:
            ids = ids[ids.index(after) + 1 :] if after in ids else []
        else:
            ids = [i for i in ids if i > after]
    chunk = ids[:top]
    body: dict[str, Any] = {"@odata.context": f"{req.version_root}/$metadata#{context}"}
    if count is not None:
        body["@odata.count"] = count
    if len(ids) > top:
        new = req.state.pages.issue(route_key(req), chunk[-1])
        kept = [p for p in req.raw_query.split("&") if p and not _is_skiptoken(p)]
        kept.append(f"$skiptoken={quote(new, safe='')}")
        body["@odata.nextLink"] = f"{req.version_root}{_quote_path(req.path)}?{'&'.join(kept)}"
    body["value"] = [render(i) for i in chunk]
    return body


def _quote_path(path: str) -> str:
    return "/".join(quote(seg, safe="@$'()=,:+") for seg in path.split("/"))
