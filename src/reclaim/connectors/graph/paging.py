"""Collections page by page: follow ``@odata.nextLink`` verbatim.

Graph's paging tokens are opaque and bound to the request they continue, so the link is
used exactly as given (Graph answers a rebuilt link with 400 Directory_ExpiredPageToken).
Headers are not part of the link: ``ConsistencyLevel: eventual`` (needed by advanced
queries such as ``$count`` or ``$filter`` on members) must be sent again on every page,
so the first request's headers go with each follow-up. Every list call carries
``$select``: fewer bytes, and one resource unit less per page.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from reclaim.connectors.graph.messages import GraphRequest
from reclaim.connectors.graph.transport import GraphTransport

EVENTUAL = {"ConsistencyLevel": "eventual"}
MAX_TOP = 999  # Graph's largest page for directory collections


def iter_pages(transport: GraphTransport, first: GraphRequest) -> Iterator[dict[str, Any]]:
    """Yield each page's JSON body, following nextLinks; raise on the first failure."""
    if first.method.upper() == "GET" and "$select" not in first.params and not first.is_absolute:
        # A list without $select returns every default property and costs one unit more.
        raise ValueError(f"list requests must carry $select: {first.path}")
    request: GraphRequest | None = first
    while request is not None:
        resp = transport.send(request)
        resp.raise_for_error()
        page = resp.json()
        yield page
        link = page.get("@odata.nextLink")
        request = GraphRequest("GET", str(link), headers=first.headers) if link else None


def iter_values(transport: GraphTransport, first: GraphRequest) -> Iterator[dict[str, Any]]:
    """Yield each object of a paged collection."""
    for page in iter_pages(transport, first):
        for item in page.get("value") or []:
            if isinstance(item, dict):
                yield item
