"""Server state and the pipeline every Graph call (plain or batch part) goes through.

Order: route lookup → injected status faults → throttling → handler → request log.
Authentication happens before, in the HTTP layer (batch parts share their envelope's token).
"""

from __future__ import annotations

import copy
import logging
import uuid
from typing import Any

from reclaim.testing.graph.auth import TokenStore
from reclaim.testing.graph.clock import Clock, SystemClock
from reclaim.testing.graph.errors import METHOD_NOT_ALLOWED, GraphError, error_body
from reclaim.testing.graph.faults import Faults
from reclaim.testing.graph.odata import PageStore
from reclaim.testing.graph.reqlog import RequestLog
from reclaim.testing.graph.router import (
    GraphRequest,
    GraphResponse,
    Route,
    find_route,
    parse_query,
    path_exists,
    split_path,
)
from reclaim.testing.graph.tenant import Tenant
from reclaim.testing.graph.throttle import Decision, ThrottleConfig, Throttler, request_cost

log = logging.getLogger(__name__)


def all_routes() -> list[Route]:
    """Every Graph route the server serves, most specific first."""
    from reclaim.testing.graph import (
        batch,
        routes_groups,
        routes_licensing,
        routes_members,
        routes_reports,
        routes_users,
    )

    return [
        *batch.ROUTES,
        *routes_members.ROUTES,
        *routes_groups.ROUTES,
        *routes_users.ROUTES,
        *routes_licensing.ROUTES,
        *routes_reports.ROUTES,
    ]


class ServerState:
    """Everything the server knows; shared between the HTTP thread and the test thread."""

    def __init__(
        self,
        tenant: Tenant,
        *,
        clock: Clock | None = None,
        throttle: ThrottleConfig | None = None,
    ) -> None:
        self.tenant = tenant
        self.clock: Clock = clock or SystemClock()
        tenant.now = self.clock.utcnow
        self.tokens = TokenStore(self.clock)
        self.throttler = Throttler(self.clock, throttle)
        self._throttle_defaults = copy.deepcopy(self.throttler.config)
        self.faults = Faults()
        self.log = RequestLog()
        self.pages = PageStore()
        self.deltas: dict[str, dict[str, Any]] = {}
        self.report_files: dict[str, str] = {}
        self.routes = all_routes()

    def reset(self, tenant: Tenant | None = None) -> None:
        """Start over: optionally a new tenant; empty log, no faults, full buckets, no tokens."""
        if tenant is not None:
            tenant.now = self.clock.utcnow
            self.tenant = tenant
        self.log.clear()
        self.faults.clear()
        self.throttler.configure(**vars(self._throttle_defaults))
        self.tokens.clear()
        self.pages = PageStore()
        self.deltas.clear()
        self.report_files.clear()

    def new_request(
        self,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: dict[str, str],
        body: Any,
        base_url: str,
        client_id: str,
        *,
        batch_id: str | None = None,
        part_id: str | None = None,
    ) -> GraphRequest:
        """Build a :class:`GraphRequest` from raw pieces (``raw_path`` relative to /v1.0)."""
        segments = split_path(raw_path)
        lower = {k.lower(): str(v) for k, v in headers.items()}
        return GraphRequest(
            method=method.upper(),
            path="/" + "/".join(segments),
            segments=segments,
            query=parse_query(raw_query),
            raw_query=raw_query,
            headers=lower,
            body=body,
            state=self,
            base_url=base_url,
            client_id=client_id,
            request_id=str(uuid.uuid4()),
            client_request_id=lower.get("client-request-id") or str(uuid.uuid4()),
            batch_id=batch_id,
            part_id=part_id,
        )

    def error_response(self, req: GraphRequest, err: GraphError) -> GraphResponse:
        """A Graph error body with the request's ids."""
        date = self.clock.utcnow().strftime("%Y-%m-%dT%H:%M:%S")
        body = error_body(
            err.code,
            err.message,
            date=date,
            request_id=req.request_id,
            client_request_id=req.client_request_id,
        )
        return GraphResponse(err.status, body, dict(err.headers), "application/json")

    def handle(self, req: GraphRequest) -> GraphResponse:
        """Serve one Graph call and log it."""
        fault_kind: str | None = None
        units = 0
        try:
            found = find_route(self.routes, req.method, req.segments)
            if found is None:
                if _is_user_delete(req):
                    # Never a legitimate Reclaim call: shout so it shows up in test output.
                    log.error("refused DELETE without /$ref: %s (it deletes the object)", req.path)
                    raise GraphError(405, "Request_BadRequest", METHOD_NOT_ALLOWED)
                if path_exists(self.routes, req.segments):
                    raise GraphError(405, "Request_BadRequest", METHOD_NOT_ALLOWED)
                last = req.segments[-1] if req.segments else ""
                raise GraphError(400, "BadRequest", f"Resource not found for the segment '{last}'.")
            route, captured = found
            rule = self.faults.take(
                ("status",), req.method, "/v1.0" + req.path, batch_part=req.batch_id is not None
            )
            if rule is not None:
                fault_kind = "status"
                raise _fault_error(rule.status, rule.retry_after)
            decision = self._throttle(req, route)
            if not decision.allowed:
                raise GraphError(
                    429, "TooManyRequests", "Please retry again later.", decision.headers
                )
            units = decision.resource_units
            with self.tenant.lock:
                resp = route.handler(req, *captured)
            resp.headers.update(decision.headers)
        except GraphError as err:
            resp = self.error_response(req, err)
        except Exception:
            # A bug in the test server: answer like Graph would, but leave a traceback.
            log.exception("graph test server failed on %s %s", req.method, req.path)
            resp = self.error_response(
                req, GraphError(500, "InternalServerError", "Test server error (see its log).")
            )
        self.log.add(
            time=self.clock.time(),
            method=req.method,
            path="/v1.0" + req.path,
            query=req.raw_query,
            status=resp.status,
            client_id=req.client_id,
            request_id=req.request_id,
            batch_id=req.batch_id,
            part_id=req.part_id,
            fault=fault_kind,
            resource_units=units,
            refused_user_delete=_is_user_delete(req),
        )
        resp.headers.setdefault("request-id", req.request_id)
        resp.headers.setdefault("client-request-id", req.client_request_id)
        return resp

    def _throttle(self, req: GraphRequest, route: Route) -> Decision:
        tid = self.tenant.tenant_id
        if route.service == "directory":
            cost = request_cost(req.method, route.base_cost, req.query)
            return self.throttler.check_directory(
                req.client_id, tid, self.tenant.size_class(), cost
            )
        if route.service in ("auditlogs", "reports"):
            # Report limits apply to each report API on its own, keyed by function name.
            api = req.segments[-1].split("(")[0].lower() if route.service == "reports" else ""
            return self.throttler.check_requests(route.service, api, req.client_id, tid)
        return Decision(True)


def _is_user_delete(req: GraphRequest) -> bool:
    """A DELETE that would delete a directory object rather than a membership.

    ``DELETE /groups/{g}/members/{u}`` without ``/$ref``, and ``DELETE /users/{u}``,
    ``/groups/{g}`` or ``/directoryObjects/{id}``: Reclaim must never send any of them.
    """
    s = [x.lower() for x in req.segments]
    if req.method != "DELETE":
        return False
    members_no_ref = len(s) == 4 and s[0] == "groups" and s[2] == "members" and s[3] != "$ref"
    object_delete = len(s) == 2 and s[0] in ("users", "groups", "directoryobjects")
    return members_no_ref or object_delete


def _fault_error(status: int, retry_after: float | None) -> GraphError:
    headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else {}
    codes = {
        429: ("TooManyRequests", "Please retry again later."),
        500: ("InternalServerError", "An internal server error occurred."),
        502: ("BadGateway", "The server received an invalid response from an upstream server."),
        503: ("ServiceUnavailable", "The service is temporarily unavailable. Retry later."),
        504: ("GatewayTimeout", "The gateway timed out."),
    }
    code, message = codes.get(status, ("UnknownError", f"Injected fault {status}."))
    return GraphError(status, code, message, headers)
