"""How every Graph call is sent: safety guards, pacing, auth, retries, error capture.

The guards live here so no code path can forget them:

- **Dry run and kill switch.** Any write - every method but GET, except the read-only
  actions (``checkMemberGroups``, ``getMemberGroups``, ...) and a ``$batch`` whose parts
  are all reads - raises WriteRefused *before* anything is sent when ``dry_run`` is set
  or ``writes_allowed()`` says no. The switch is read again before each attempt, so
  pausing a run also stops its retries.
- **Never delete an object.** A DELETE whose path does not end in ``/$ref`` (which
  would delete the user or group itself) is refused the same way, batch parts included.

Then each attempt books its documented cost in the :class:`RateBudget`, waits if told,
and is sent with a bearer token. Retries: 429 always (Graph did nothing), 500/502/503/504,
timeouts and dropped connections only for idempotent calls (a DELETE of a ``$ref`` or a
GET is; whether a dropped ``assignLicense`` happened is unknown). Retry-After is honoured
exactly; without it, exponential backoff with jitter. Attempts and total time are
bounded; then the caller gets Transient (with Graph's Retry-After, if any). A 401 gets one
fresh token; a second 401 is StopRun.
"""

from __future__ import annotations

import json as jsonlib
import logging
import random
import ssl
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from reclaim import __version__ as reclaim_version
from reclaim.connectors.errors import StopRun, Transient, WriteRefused
from reclaim.connectors.graph.auth import TokenProvider
from reclaim.connectors.graph.budget import (
    BudgetLimits,
    RateBudget,
    RequestCost,
    TokenBucketBudget,
    request_cost,
)
from reclaim.connectors.graph.errors import TRANSIENT_STATUSES, describe
from reclaim.connectors.graph.messages import GraphRequest, GraphResponse, batch_parts
from reclaim.connectors.graph.settings import GraphSettings, RetryPolicy
from reclaim.ops.counters import count_graph

log = logging.getLogger("reclaim.connectors.graph")

Sleep = Callable[[float], None]
Clock = Callable[[], float]


def make_http_client(settings: GraphSettings) -> httpx.Client:
    """The httpx client shared by Graph calls and MSAL's sign-in requests."""
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=settings.ca_file) if settings.ca_file else True
    )
    timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout)
    # Requests in flight are bounded by the callers — ``concurrency`` $batch requests, one
    # per case a worker runs at once (``reclaim worker --concurrency``, ≤ 64) — so the
    # pool need not bound them too: a bound below theirs would queue requests into pool
    # timeouts. Idle connections beyond the keep-alive count are closed.
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
    return httpx.Client(
        verify=verify,
        timeout=timeout,
        limits=limits,
        # Graph never redirects API calls we make; a redirect could carry the token away.
        follow_redirects=False,
        headers={"User-Agent": f"reclaim/{reclaim_version}", "Accept": "application/json"},
    )


def backoff_delay(policy: RetryPolicy, retry: int, *, rng: Callable[[], float]) -> float:
    """Exponential backoff with equal jitter: between d/2 and d, d = base·2^retry (capped)."""
    ceiling = min(policy.backoff_cap, policy.backoff_base * (2**retry))
    return ceiling / 2 + rng() * ceiling / 2


def request_cost_of(req: GraphRequest) -> RequestCost:
    """The budget a request books: a ``$batch`` costs the sum of its parts."""
    parts = batch_parts(req.body) if req.path.rstrip("/").lower().endswith("/$batch") else []
    if parts:
        total = RequestCost(0, 0)
        for part in parts:
            total = total + request_cost(part.method, part.path)
        return total
    return request_cost(req.method, req.target)


def is_idempotent(req: GraphRequest) -> bool:
    """May this call be sent again after an unclear failure (5xx, timeout, reset)?"""
    # Membership $ref writes are safe to repeat: a repeat answers 404 / "already exist",
    # which the membership code checks and reports as AlreadyDone.
    if not req.is_write or req.method.upper() == "DELETE":
        return True
    if req.method.upper() == "POST" and req.path.rstrip("/").lower().endswith("/$batch"):
        return all(is_idempotent(p) for p in batch_parts(req.body))
    return req.path.split("?", 1)[0].rstrip("/").lower().endswith("/members/$ref")


class GraphTransport:
    """Sends :class:`GraphRequest` values to one tenant's Graph; thread-safe.

    ``writes_allowed`` is the kill switch (called before every write attempt);
    ``dry_run`` refuses all writes. ``budget`` defaults to token buckets sized for
    ``settings.tenant_size``. ``sleep``, ``clock`` (monotonic seconds) and ``rng``
    are injectable so tests can check the waits without waiting.
    """

    def __init__(
        self,
        settings: GraphSettings,
        *,
        auth: TokenProvider,
        http: httpx.Client,
        writes_allowed: Callable[[], bool] = lambda: True,
        dry_run: bool = False,
        budget: RateBudget | None = None,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.auth = auth
        self.http = http
        self.writes_allowed = writes_allowed
        self.dry_run = dry_run
        self.budget: RateBudget = budget or TokenBucketBudget(
            BudgetLimits.for_tenant(settings.tenant_size), clock=clock
        )
        self.sleep = sleep
        self.clock = clock
        self.rng = rng

    # ----- guards ----------------------------------------------------------------------

    def check_write(self, what: str) -> None:
        """Raise WriteRefused if writes are off now (dry run or kill switch)."""
        if self.dry_run:
            raise WriteRefused(f"dry run: not sending {what}", code="graph-dry-run")
        try:
            allowed = self.writes_allowed()
        except Exception as exc:
            # A kill switch that cannot be read must fail closed.
            raise WriteRefused(
                f"writes are paused: the kill switch could not be read ({type(exc).__name__}); "
                f"not sending {what}",
                code="graph-paused",
            ) from exc
        if not allowed:
            raise WriteRefused(
                f"writes are paused (kill switch): not sending {what}", code="graph-paused"
            )

    def _guard(self, req: GraphRequest) -> None:
        if req.removes_object():
            # Without /$ref, Graph deletes the directory object itself. Never.
            raise WriteRefused(
                f"refusing {req.method} {req.path}: a DELETE without /$ref would delete the "
                "object itself",
                code="graph-object-delete",
            )
        if req.is_write:
            self.check_write(f"{req.method} {req.path}")

    # ----- sending ---------------------------------------------------------------------

    def url(self, req: GraphRequest) -> str:
        """The absolute URL for ``req``; absolute links must point at our Graph root."""
        if req.is_absolute:
            root = self.settings.api_root + "/"
            if not req.path.startswith(root):
                # Never send the bearer token to a host we were not configured for.
                where = req.path.split("?")[0]
                raise StopRun(
                    f"Graph returned a link outside {self.settings.api_root}: {where}",
                    code="graph-foreign-link",
                )
            return req.target
        return self.settings.api_root + req.target

    def send(self, req: GraphRequest) -> GraphResponse:
        """Send with guards, pacing and retries; return Graph's final answer.

        Returns non-2xx answers that are not worth retrying (400, 403, 404 ...) for the
        caller to interpret; raises Transient when retries run out, StopRun when
        authentication fails for good, WriteRefused when a write is not allowed.
        """
        policy = self.settings.retry
        deadline = self.clock() + policy.deadline
        cost = request_cost_of(req)
        idempotent = is_idempotent(req)
        url = self.url(req)
        retries, refreshed = 0, False
        request_id = str(uuid.uuid4())
        while True:
            self._guard(req)
            self._pace(cost, deadline, req)
            token = self.auth.token()
            try:
                raw = self._attempt(req, url, token, request_id)
            except httpx.TransportError as exc:
                # A connect failure means nothing was sent; anything later might have been.
                unsent = isinstance(
                    exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
                )
                what = f"{req.method} {req.path.split('?')[0]}: {type(exc).__name__}"
                if not (idempotent or unsent):
                    raise Transient(
                        f"{what}; the outcome is unknown and the call is not safe to repeat",
                        code="graph-network",
                    ) from exc
                delay = backoff_delay(policy, retries, rng=self.rng)
                if retries + 1 >= policy.max_attempts or self.clock() + delay > deadline:
                    raise Transient(
                        f"{what} (gave up after {retries + 1} attempts)", code="graph-network"
                    ) from exc
                log.warning("Graph: %s; retry %d in %.1fs", what, retries + 1, delay)
                self.sleep(delay)
                retries += 1
                continue
            if raw.status == 401:
                if refreshed:
                    raise raw.error()
                # Expired, revoked or rotated: one fresh token, then it is for real.
                self.auth.invalidate(token)
                refreshed = True
                continue
            if not self._retryable(raw, idempotent):
                return raw
            failure = raw.failure
            if raw.status == 429:
                self.budget.throttled(failure.retry_after)
            delay = (
                failure.retry_after
                if failure.retry_after is not None
                else backoff_delay(policy, retries, rng=self.rng)
            )
            if retries + 1 >= policy.max_attempts or self.clock() + delay > deadline:
                raise raw.error()
            log.warning(
                "Graph: %s; retry %d in %.1fs",
                describe(failure, method=req.method, path=req.target),
                retries + 1,
                delay,
            )
            self.sleep(delay)
            retries += 1

    @staticmethod
    def _retryable(raw: GraphResponse, idempotent: bool) -> bool:
        if raw.status == 429:
            return True
        return idempotent and raw.status in TRANSIENT_STATUSES

    def _pace(self, cost: RequestCost, deadline: float, req: GraphRequest) -> None:
        if not (cost.resource_units or cost.writes):
            return
        wait = self.budget.reserve(cost)
        if wait <= 0:
            return
        if self.clock() + wait > deadline:
            raise Transient(
                f"{req.method} {req.path.split('?')[0]}: the Graph budget for this app is "
                f"spent for the next {wait:.0f}s",
                code="graph-budget",
                retry_after=wait,
            )
        log.debug("Graph: pacing %.2fs before %s %s", wait, req.method, req.path)
        self.sleep(wait)

    def _attempt(self, req: GraphRequest, url: str, token: str, request_id: str) -> GraphResponse:
        headers = {
            "Authorization": f"Bearer {token}",
            "client-request-id": request_id,
            **req.headers,
        }
        content: bytes | None = None
        if req.body is not None:
            content = jsonlib.dumps(req.body).encode()
            headers["Content-Type"] = "application/json"
        resp = self.http.request(req.method, url, headers=headers, content=content)
        count_graph(req.method, resp.status_code)
        out = GraphResponse(
            status=resp.status_code,
            headers={k.lower(): v for k, v in resp.headers.items()},
            body=_body(resp),
            method=req.method.upper(),
            # Relative to the versioned root, query included: error messages drop the
            # query, the 403 explanation looks at it ($select=signInActivity).
            path=url.removeprefix(self.settings.api_root),
        )
        log.debug("Graph: %s %s -> %s", req.method, req.path.split("?")[0], resp.status_code)
        return out

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()


def _body(resp: httpx.Response) -> Any:
    if not resp.content:
        return None
    if "json" in resp.headers.get("content-type", ""):
        try:
            return resp.json()
        except ValueError:
            return resp.text
    return resp.text
