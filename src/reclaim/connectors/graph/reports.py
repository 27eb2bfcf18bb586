"""Usage reads: sign-in logs, users' sign-in activity, Microsoft 365 usage reports.

Calls and their limits (https://learn.microsoft.com/graph/throttling-limits):

- ``GET /auditLogs/signIns?$filter=appId eq '…' and createdDateTime ge …&$top=1000``,
  paged: **5 requests per 10 s** per app and tenant (``AuditLog.Read.All``). The
  transport's resource-unit budget does not cover this service, so
  :class:`RequestPacer` keeps the calls under that limit on our side; a 429 anyway is
  retried after its Retry-After by the transport.
- ``GET /users?$select=id,userPrincipalName,signInActivity&$top=120``, paged (Graph caps
  the page at 120 when ``signInActivity`` is selected; ``AuditLog.Read.All``).
- ``GET /reports/{function}(period='D30')``: **302** to a pre-authenticated CSV download
  (14 requests per 10 min per report; ``Reports.Read.All``). The download is fetched
  without the bearer token: it is not for that host, and the URL carries its own
  authorization.
- ``GET /admin/reportSettings`` (``ReportSettings.Read.All``): whether the tenant
  conceals user names in reports.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from reclaim.connectors.errors import StopRun, Transient
from reclaim.connectors.graph.client import GraphClient
from reclaim.connectors.graph.messages import GraphRequest, odata_string
from reclaim.connectors.graph.paging import iter_values
from reclaim.connectors.graph.transport import GraphTransport

SIGN_IN_REQUESTS, SIGN_IN_WINDOW = 5, 10.0  # documented: 5 requests per 10 s
SIGN_IN_PAGE = 1000  # the largest $top the sign-in log accepts
ACTIVITY_PAGE = 120  # the largest $top with signInActivity selected
REPORT_FUNCTIONS = ("getOffice365ActiveUserDetail", "getM365AppUserDetail")
PERIODS = (7, 30, 90, 180)  # days: D7, D30, D90, D180


class RequestPacer:
    """At most ``limit`` requests in any ``window`` seconds (a sliding window).

    Thread-safe; ``clock``/``sleep`` are the transport's, so tests run on fake time.
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit, self.window, self.clock, self.sleep = limit, window, clock, sleep
        self.sent: deque[float] = deque()
        self.waited: list[float] = []  # every wait, for reports and tests
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until one more request fits, and count it."""
        with self._lock:
            now = self.clock()
            while self.sent and self.sent[0] <= now - self.window:
                self.sent.popleft()
            if len(self.sent) >= self.limit:
                delay = self.sent[0] + self.window - now
                self.waited.append(round(delay, 3))
                self.sleep(delay)
                now = self.clock()
                self.sent.popleft()
            self.sent.append(now)

    def done(self) -> None:
        """The request counted last was answered now: count it from now.

        The transport may have retried it after a 429 (refused requests consume
        nothing), so the attempt that counts is the last one, not the first.
        """
        with self._lock:
            if self.sent:
                self.sent[-1] = max(self.sent[-1], self.clock())


class UsageReads:
    """The usage calls above, on a :class:`GraphClient`'s transport."""

    def __init__(self, client: GraphClient) -> None:
        self.transport: GraphTransport = client.transport
        self.sign_in_pacer = RequestPacer(
            SIGN_IN_REQUESTS,
            SIGN_IN_WINDOW,
            clock=self.transport.clock,
            sleep=self.transport.sleep,
        )

    def concealed_names(self) -> bool | None:
        """Whether reports show concealed (hashed) user names; None if not readable."""
        resp = self.transport.send(GraphRequest("GET", "/admin/reportSettings"))
        if resp.status == 403:
            return None  # ReportSettings.Read.All not granted: the CSV is checked instead
        resp.raise_for_error()
        return bool(resp.json().get("displayConcealedNames"))

    def sign_ins(self, app_id: str, *, since: dt.datetime) -> Iterator[dict[str, Any]]:
        """Sign-ins to one app (by its appId) since ``since``, newest first, all pages."""
        stamp = since.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        flt = f"appId eq {odata_string(app_id)} and createdDateTime ge {stamp}"
        request: GraphRequest | None = GraphRequest(
            "GET", "/auditLogs/signIns", params={"$filter": flt, "$top": str(SIGN_IN_PAGE)}
        )
        while request is not None:
            self.sign_in_pacer.wait()
            try:
                resp = self.transport.send(request)
            finally:
                self.sign_in_pacer.done()
            resp.raise_for_error()
            page = resp.json()
            yield from (v for v in page.get("value") or [] if isinstance(v, dict))
            link = page.get("@odata.nextLink")
            request = GraphRequest("GET", str(link)) if link else None

    def sign_in_activity(self) -> Iterator[dict[str, Any]]:
        """Every user with ``signInActivity`` (absent for users who never signed in)."""
        request = GraphRequest(
            "GET",
            "/users",
            params={
                "$select": "id,userPrincipalName,signInActivity",
                "$top": str(ACTIVITY_PAGE),
            },
        )
        return iter_values(self.transport, request)

    def report_csv(self, function: str, *, period_days: int) -> str:
        """One usage report's CSV text (``GET /reports/{function}(period='D…')``, 302)."""
        if function not in REPORT_FUNCTIONS or period_days not in PERIODS:
            raise ValueError(f"unsupported report {function}(D{period_days})")
        resp = self.transport.send(
            GraphRequest("GET", f"/reports/{function}(period='D{period_days}')")
        )
        if resp.status in (301, 302, 303, 307, 308):
            return self._download(str(resp.headers.get("location", "")), function)
        resp.raise_for_error()
        return resp.body if isinstance(resp.body, str) else ""

    def _download(self, location: str, function: str) -> str:
        if not location.startswith("https://"):
            raise StopRun(
                f"{function}: the report redirect is not an https URL", code="graph-report"
            )
        try:
            # No Authorization header: the URL is pre-authenticated, and the token is
            # only ever sent to the configured Graph root.
            resp = self.transport.http.get(location)
        except httpx.TransportError as exc:
            raise Transient(f"{function}: report download failed ({type(exc).__name__})") from exc
        if resp.status_code != 200:
            raise Transient(
                f"{function}: report download answered {resp.status_code}", code="graph-report"
            )
        return resp.content.decode("utf-8-sig")


def period_covering(days: float) -> int:
    """The shortest report period (7, 30, 90 or 180 days) that covers ``days``."""
    return next((p for p in PERIODS if days <= p), PERIODS[-1])
