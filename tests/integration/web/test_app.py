"""The app's frame: health, security headers, problem details, the OpenAPI document."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from tests.integration.web.conftest import WebEnv, assert_problem, client_for

pytestmark = pytest.mark.anyio


async def test_healthz_answers_without_authentication(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_security_headers_on_pages_api_and_errors(web: WebEnv, client) -> None:
    for path, headers in [
        ("/healthz", {}),
        ("/login", {}),
        ("/api/v1/policies", web.auth("viewer")),
        ("/api/v1/nope", {}),
    ]:
        response = await client.get(path, headers=headers)
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"
        assert "strict-transport-security" not in response.headers  # plain http here


async def test_hsts_only_over_https(web: WebEnv) -> None:
    async with client_for(web.app, https=True) as c:
        response = await c.get("/healthz")
    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_static_css_is_served_and_cacheable(client: httpx.AsyncClient) -> None:
    response = await client.get("/static/app.css")
    assert response.status_code == 200
    assert "text/css" in response.headers["content-type"]
    assert "cache-control" not in response.headers or "no-store" not in response.headers.get(
        "cache-control", ""
    )


async def test_unknown_path_and_method_are_problems(web: WebEnv, client) -> None:
    body = assert_problem(await client.get("/api/v1/nope"), 404)
    assert body["type"] == "about:blank" and body["title"] == "Not Found"
    assert body["instance"] == "/api/v1/nope"
    assert_problem(await client.delete("/api/v1/policies", headers=web.auth("admin")), 405)


async def test_validation_errors_name_each_field(web: WebEnv, client) -> None:
    response = await client.get(
        "/api/v1/audit?limit=0&cursor=" + "x" * 300, headers=web.auth("viewer")
    )
    body = assert_problem(response, 422)
    fields = {(e["location"], e["field"]) for e in body["errors"]}
    assert fields == {("query", "limit"), ("query", "cursor")}
    assert all(e["detail"] for e in body["errors"])


async def test_crash_is_a_generic_500_and_the_traceback_stays_in_the_log(
    web: WebEnv, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom() -> Any:
        raise RuntimeError("secret internals: password=hunter2")

    web.app.add_api_route("/api/v1/boom", boom)
    with caplog.at_level(logging.ERROR, logger="reclaim.web"):
        response = await client.get("/api/v1/boom")
    body = assert_problem(response, 500)
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    incident = body["incident"]
    assert incident in body["detail"]
    logged = [r for r in caplog.records if incident in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback went to the log
    assert response.headers["content-security-policy"]  # headers even on a crash


async def test_browser_gets_an_html_error_page(web: WebEnv, client) -> None:
    response = await client.get("/no-such-page", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "404 Not Found" in response.text


async def test_openapi_document_is_valid_openapi_31(client: httpx.AsyncClient) -> None:
    from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

    response = await client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.1")
    OPENAPI_31_VALIDATOR.validate(doc)  # the official 3.1 meta-schema, bundled by schemathesis
    _assert_refs_resolve(doc, doc)
    paths = doc["paths"]
    assert {"/api/v1/policies", "/api/v1/usage", "/api/v1/audit"} <= set(paths)
    assert not any(p.startswith(("/login", "/admin", "/audit")) for p in paths)  # pages hidden
    usage = paths["/api/v1/usage"]["post"]
    assert set(usage["requestBody"]["content"]) == {
        "application/json",
        "application/x-ndjson",
        "text/csv",
    }
    for code in ("401", "403", "413", "415", "422"):
        assert "application/problem+json" in usage["responses"][code]["content"], code
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def _assert_refs_resolve(node: Any, doc: dict) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            target: Any = doc
            for part in ref.removeprefix("#/").split("/"):
                assert part in target, f"dangling $ref {ref}"
                target = target[part]
        for value in node.values():
            _assert_refs_resolve(value, doc)
    elif isinstance(node, list):
        for value in node:
            _assert_refs_resolve(value, doc)


def test_access_log_filter_redacts_codes_in_urls() -> None:
    from reclaim.web.security import RedactQueryFilter

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/auth/oidc/callback?code=abc123&state=xyz&x=1", "1.1", 303),
        None,
    )
    assert RedactQueryFilter().filter(record)
    message = record.getMessage()
    assert "abc123" not in message and "xyz" not in message
    assert "code=[redacted]&state=[redacted]&x=1" in message
