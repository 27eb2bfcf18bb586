"""``/_testing/...``: the out-of-process control surface (no auth: loopback test server).

- ``GET /_testing/requests`` (filters: method, path regex, status, batch_part) /
  ``DELETE /_testing/requests``
- ``GET|POST|DELETE /_testing/faults`` (POST body: a :class:`FaultRule` as JSON)
- ``POST /_testing/tokens/revoke`` ``{"client_id": optional}``
- ``POST /_testing/clients/{client_id}/disable``
- ``GET|POST /_testing/throttle`` (POST body: ThrottleConfig fields, e.g. ``{"scale": 10}``;
  ``{"reset": true}`` refills every bucket)
- ``POST /_testing/clock/advance`` ``{"seconds": N}`` (only with a manual clock)
- ``GET /_testing/groups/{group}/members`` and ``GET /_testing/membership?user=&group=``
- ``POST /_testing/groups/{group}/members`` ``{"member": id-or-upn}`` and
  ``DELETE /_testing/groups/{group}/members/{member}``: seed or drift state out of band
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from reclaim.testing.graph.clock import ManualClock
from reclaim.testing.graph.faults import FaultRule
from reclaim.testing.graph.state import ServerState


def admin_router(state: ServerState) -> APIRouter:
    """Routes bound to one server's state."""
    r = APIRouter(prefix="/_testing")

    @r.get("/requests")
    async def requests(request: Request) -> JSONResponse:
        q = request.query_params
        part = q.get("batch_part")
        found = state.log.find(
            q.get("method"),
            q.get("path"),
            status=int(q["status"]) if "status" in q else None,
            batch_part=None if part is None else part.lower() == "true",
        )
        wanted = {rec.seq for rec in found}
        return JSONResponse([d for d in state.log.as_dicts() if d["seq"] in wanted])

    @r.delete("/requests")
    async def clear_requests() -> JSONResponse:
        state.log.clear()
        return JSONResponse({"cleared": True})

    @r.get("/faults")
    async def faults() -> JSONResponse:
        return JSONResponse(state.faults.rules())

    @r.post("/faults")
    async def add_fault(request: Request) -> JSONResponse:
        body = await _json(request)
        try:
            rule = state.faults.add(FaultRule(**body))
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"added": rule.kind})

    @r.delete("/faults")
    async def clear_faults() -> JSONResponse:
        state.faults.clear()
        return JSONResponse({"cleared": True})

    @r.post("/tokens/revoke")
    async def revoke(request: Request) -> JSONResponse:
        body = await _json(request)
        return JSONResponse({"revoked": state.tokens.revoke(body.get("client_id"))})

    @r.post("/clients/{client_id}/disable")
    async def disable(client_id: str) -> JSONResponse:
        app = state.tenant.clients.get(client_id)
        if app is None:
            return JSONResponse({"error": "unknown client"}, status_code=404)
        app.enabled = False
        return JSONResponse({"disabled": client_id, "revoked": state.tokens.revoke(client_id)})

    @r.get("/throttle")
    async def throttle() -> JSONResponse:
        return JSONResponse(vars(state.throttler.config))

    @r.post("/throttle")
    async def set_throttle(request: Request) -> JSONResponse:
        body = await _json(request)
        if body.pop("reset", False):
            state.throttler.reset()
        try:
            state.throttler.configure(**body)
        except AttributeError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(vars(state.throttler.config))

    @r.post("/clock/advance")
    async def advance(request: Request) -> JSONResponse:
        if not isinstance(state.clock, ManualClock):
            return JSONResponse({"error": "server runs on the system clock"}, status_code=409)
        state.clock.advance(float((await _json(request)).get("seconds", 0)))
        return JSONResponse({"time": state.clock.time()})

    @r.get("/groups/{group}/members")
    async def members(group: str) -> JSONResponse:
        g = state.tenant.find_group(group)
        if g is None:
            return JSONResponse({"error": "unknown group"}, status_code=404)
        return JSONResponse([{"id": m.member_id, "kind": m.kind} for m in g.members.values()])

    @r.post("/groups/{group}/members")
    async def add_member(group: str, request: Request) -> JSONResponse:
        body = await _json(request)
        try:
            state.tenant.add_member(group, str(body["member"]))
        except KeyError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return JSONResponse({"added": True})

    @r.delete("/groups/{group}/members/{member}")
    async def remove_member(group: str, member: str) -> JSONResponse:
        try:
            removed = state.tenant.remove_member(group, member)
        except KeyError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return JSONResponse({"removed": removed})

    @r.get("/membership")
    async def membership(user: str, group: str, transitive: bool = False) -> JSONResponse:
        try:
            member = state.tenant.is_member(user, group, transitive=transitive)
        except KeyError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return JSONResponse({"member": member})

    return r


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    data = await request.json()
    return data if isinstance(data, dict) else {}
