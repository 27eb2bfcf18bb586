"""The ASGI application: token endpoint, OIDC discovery, Graph v1.0, admin and downloads.

Connection-level faults (latency, hang, reset) are applied by :class:`FaultLayer`, the
outermost ASGI callable, because a reset needs the raw transport that uvicorn hands it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from reclaim.testing.graph.admin import admin_router
from reclaim.testing.graph.auth import (
    AadError,
    authenticate_client,
    openid_configuration,
    token_response,
)
from reclaim.testing.graph.errors import GraphError
from reclaim.testing.graph.router import GraphResponse
from reclaim.testing.graph.state import ServerState

ASGIApp = Any


def create_app(state: ServerState) -> ASGIApp:
    """The whole server as one ASGI callable."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(admin_router(state))

    @app.get("/{tenant}/v2.0/.well-known/openid-configuration")
    async def openid(tenant: str, request: Request) -> JSONResponse:
        return JSONResponse(openid_configuration(_base_url(request), tenant))

    @app.post("/{tenant}/oauth2/v2.0/token")
    async def token(tenant: str, request: Request) -> Response:
        return _token(state, tenant, request, await request.body())

    @app.get("/_reports/{file_id}")
    async def report_file(file_id: str) -> Response:
        csv = state.report_files.get(file_id)
        if csv is None:
            return PlainTextResponse("Not found", status_code=404)
        return Response(csv.encode("utf-8-sig"), media_type="application/octet-stream")

    @app.api_route("/v1.0/{rest:path}", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
    async def graph(request: Request) -> Response:
        return _graph(state, request, await request.body())

    @app.api_route("/beta/{rest:path}", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
    async def beta(request: Request) -> Response:
        # Reclaim only uses v1.0; a beta call is a bug in the client worth a loud answer.
        body = {"error": {"code": "BadRequest", "message": "This test server serves v1.0 only."}}
        return JSONResponse(body, status_code=400)

    return FaultLayer(app, state)


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _token(state: ServerState, tenant: str, request: Request, raw: bytes) -> Response:
    now = state.clock.utcnow().strftime("%Y-%m-%d %H:%M:%SZ")
    rule = state.faults.take(("token",), "POST", request.url.path)
    try:
        if rule is not None:
            if rule.status in (400, 401):
                raise AadError(
                    rule.status,
                    "invalid_client",
                    7000222,
                    "The provided client secret keys are expired.",
                )
            headers = {"Retry-After": str(int(rule.retry_after))} if rule.retry_after else {}
            err = AadError(
                rule.status,
                "temporarily_unavailable",
                50196,
                "The server is temporarily unavailable.",
            )
            return JSONResponse(err.body(now), status_code=rule.status, headers=headers)
        form = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        url = f"{_base_url(request)}/{tenant}/oauth2/v2.0/token"
        app = authenticate_client(state.tenant, tenant, form, url)
        resource = form["scope"].split()[0].removesuffix("/.default")
        issued = state.tokens.issue(app.client_id, state.tenant.tenant_id, resource)
        status, body = 200, token_response(issued)
    except AadError as err:
        status, body = err.status, err.body(now)
    state.log.add(
        time=state.clock.time(),
        method="POST",
        path=request.url.path,
        query="",
        status=status,
        fault="token" if rule else None,
        client_id=_form_client(raw),
    )
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def _form_client(raw: bytes) -> str:
    return dict(parse_qsl(raw.decode("utf-8", "replace"))).get("client_id", "")


def _graph(state: ServerState, request: Request, raw: bytes) -> Response:
    raw_path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    rest = raw_path.split("?", 1)[0][len("/v1.0") :]
    query = request.scope.get("query_string", b"").decode("latin-1")
    req = state.new_request(
        request.method, rest, query, dict(request.headers), None, _base_url(request), ""
    )
    try:
        if raw:
            try:
                req.body = json.loads(raw)
            except ValueError:
                raise GraphError(
                    400, "BadRequest", "Unable to read JSON request payload."
                ) from None
        info = state.tokens.check(request.headers.get("authorization"), state.tenant.tenant_id)
        req.client_id = info.client_id
    except GraphError as err:
        resp = state.error_response(req, err)
        state.log.add(
            time=state.clock.time(),
            method=req.method,
            path="/v1.0" + req.path,
            query=query,
            status=resp.status,
            request_id=req.request_id,
        )
        resp.headers.update(
            {"request-id": req.request_id, "client-request-id": req.client_request_id}
        )
        return to_http(resp)
    return to_http(state.handle(req))


def to_http(resp: GraphResponse) -> Response:
    """Serialize a :class:`GraphResponse` as an HTTP response."""
    if resp.body is None:
        return Response(status_code=resp.status, headers=resp.headers)
    if isinstance(resp.body, str):
        content = resp.body.encode()
    else:
        content = json.dumps(resp.body, separators=(",", ":")).encode()
    return Response(
        content, status_code=resp.status, headers=resp.headers, media_type=resp.content_type
    )


class FaultLayer:
    """Outermost ASGI layer: injected latency, hangs and connection resets."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Apply connection-level faults, then hand the request on."""
        if scope["type"] != "http" or scope["path"].startswith("/_testing"):
            await self.app(scope, receive, send)
            return
        faults, method, path = self.state.faults, scope["method"], scope["path"]
        if faults.take(("reset",), method, path) is not None:
            self.state.log.add(
                time=self.state.clock.time(),
                method=method,
                path=path,
                query=scope.get("query_string", b"").decode("latin-1"),
                status=0,
                fault="reset",
            )
            await _reset(send)
            return
        for kind in ("hang", "latency"):
            rule = faults.take((kind,), method, path)
            if rule is not None:
                await _sleep(rule.seconds, faults.wake)
        await self.app(scope, receive, send)


async def _sleep(seconds: float, wake: Any) -> None:
    """Sleep in small steps so clearing the faults (or stopping) releases hung requests."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not wake.is_set():
        left = end - loop.time()
        if left <= 0:
            return
        await asyncio.sleep(min(left, 0.05))


async def _reset(send: Any) -> None:
    """Abort the TCP connection with RST: uvicorn's ``send`` is bound to the request cycle."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise RuntimeError("cannot reach the transport to reset the connection")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # Let connection_lost run so uvicorn knows the client is gone and sends nothing more.
    for _ in range(3):
        await asyncio.sleep(0)
