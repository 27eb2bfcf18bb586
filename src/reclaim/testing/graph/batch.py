"""``POST /$batch``: up to 20 parts, each evaluated, throttled and logged on its own.

The envelope is 200 whenever it parses; a malformed envelope (not JSON, no ``requests``,
more than 20 parts, duplicate or missing ids, unknown ``dependsOn`` targets) is a 400.
A part whose dependency did not succeed gets 424 Failed Dependency.
"""

from __future__ import annotations

from typing import Any

from reclaim.testing.graph.errors import GraphError, bad_request
from reclaim.testing.graph.router import GraphRequest, GraphResponse, Route, json_response

MAX_PARTS = 20


def post_batch(req: GraphRequest) -> GraphResponse:
    """Run the parts in dependency order and return their responses in request order."""
    parts = _validate(req.body)
    done: dict[str, int] = {}
    results: dict[str, dict[str, Any]] = {}
    remaining = list(parts)
    while remaining:
        ready = [p for p in remaining if all(str(d) in done for d in p.get("dependsOn", []))]
        if not ready:
            raise bad_request(
                "Invalid batch payload: the dependsOn graph has a cycle.", "BadRequest"
            )
        for part in ready:
            remaining.remove(part)
            pid = str(part["id"])
            failed = [d for d in part.get("dependsOn", []) if not 200 <= done[str(d)] < 300]
            resp = _failed_dependency(req, part) if failed else _run_part(req, part)
            done[pid] = resp.status
            results[pid] = _serialize(pid, resp)
    return json_response({"responses": [results[str(p["id"])] for p in parts]})


def _validate(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        raise bad_request("Invalid batch payload format.", "BadRequest")
    parts = body["requests"]
    if len(parts) > MAX_PARTS:
        raise bad_request(
            f"Invalid batch payload: the number of requests exceeds the limit of {MAX_PARTS}.",
            "BadRequest",
        )
    seen: set[str] = set()
    for part in parts:
        if not isinstance(part, dict) or not all(k in part for k in ("id", "method", "url")):
            raise bad_request(
                "Invalid batch payload: each request needs 'id', 'method' and 'url'.", "BadRequest"
            )
        pid = str(part["id"]).lower()  # ids are not case-sensitive
        if pid in seen:
            raise bad_request(
                f"Invalid batch payload: request id '{part['id']}' is not unique.", "BadRequest"
            )
        seen.add(pid)
    ids = {str(p["id"]) for p in parts}
    for part in parts:
        deps = part.get("dependsOn", [])
        if not isinstance(deps, list) or any(str(d) not in ids for d in deps):
            raise bad_request(
                f"Invalid batch payload: dependsOn of '{part['id']}' names an unknown request.",
                "BadRequest",
            )
    return parts


def _run_part(req: GraphRequest, part: dict[str, Any]) -> GraphResponse:
    state = req.state
    url = str(part["url"])
    headers = part.get("headers") or {}
    if url.lower().startswith(("http://", "https://")):
        sub = state.new_request(
            str(part["method"]),
            "/",
            "",
            headers,
            None,
            req.base_url,
            req.client_id,
            batch_id=req.request_id,
            part_id=str(part["id"]),
        )
        return state.error_response(
            sub,
            bad_request(
                "Invalid request: the URL of a batch request must be relative.", "BadRequest"
            ),
        )
    path, _, query = url.partition("?")
    if path.lower().startswith("/v1.0/"):
        path = path[len("/v1.0") :]
    sub = state.new_request(
        str(part["method"]),
        path,
        query,
        {"client-request-id": req.client_request_id, **headers},
        part.get("body"),
        req.base_url,
        req.client_id,
        batch_id=req.request_id,
        part_id=str(part["id"]),
    )
    return state.handle(sub)


def _failed_dependency(req: GraphRequest, part: dict[str, Any]) -> GraphResponse:
    state = req.state
    path, _, query = str(part["url"]).partition("?")
    sub = state.new_request(
        str(part["method"]),
        path,
        query,
        {},
        None,
        req.base_url,
        req.client_id,
        batch_id=req.request_id,
        part_id=str(part["id"]),
    )
    resp = state.error_response(
        sub, GraphError(424, "FailedDependency", "Dependent request failed.")
    )
    state.log.add(
        time=state.clock.time(),
        method=sub.method,
        path="/v1.0" + sub.path,
        query=sub.raw_query,
        status=424,
        client_id=req.client_id,
        request_id=sub.request_id,
        batch_id=req.request_id,
        part_id=sub.part_id,
    )
    return resp


def _serialize(pid: str, resp: GraphResponse) -> dict[str, Any]:
    headers = dict(resp.headers)
    if resp.content_type:
        headers["Content-Type"] = resp.content_type
    out: dict[str, Any] = {"id": pid, "status": resp.status, "headers": headers}
    if resp.body is not None:
        out["body"] = resp.body
    return out


ROUTES = [Route("POST", ("$batch",), post_batch, service="none")]
