"""scripts/audit_deps.py, the dependency audit of scripts/test.sh, against a registry
stand-in on loopback that serves PyPI's JSON API (``/pypi/<name>/json``) from a script.

The real registry is not asked here (tests talk to loopback only); scripts/test.sh
runs the audit against it.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.integration.campaigns.conftest import free_port

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "audit_deps.py"

ADVISORY = {
    "id": "PYSEC-2099-1",
    "aliases": ["CVE-2099-0001"],
    "fixed_in": ["2.0.1"],
    "link": "https://osv.dev/vulnerability/PYSEC-2099-1",
    "withdrawn": None,
}
PROJECTS: dict[str, dict[str, Any]] = {
    "clean": {"info": {"version": "1.0"}, "vulnerabilities": []},
    "vulnerable": {"info": {"version": "2.0"}, "vulnerabilities": [ADVISORY]},
    "withdrawn": {
        "info": {"version": "3.0"},
        "vulnerabilities": [{**ADVISORY, "withdrawn": "2099-01-01T00:00:00Z"}],
    },
    "moved-on": {"info": {"version": "5.0"}, "vulnerabilities": []},
}


@pytest.fixture
def registry() -> Iterator[str]:
    """``/pypi/<name>/json`` for PROJECTS, 404 for anything else; ``/down/...`` is 503."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = self.path.strip("/").split("/")
            if parts[0] == "down":
                self.send_response(503)
                self.end_headers()
                return
            body = PROJECTS.get(parts[1]) if len(parts) == 3 and parts[2] == "json" else None
            raw = json.dumps(body).encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw) if body else 0))
            self.end_headers()
            if body:
                self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def audit(api: str, pins: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--json-api", api, "--packages", pins, *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_latest_releases_without_advisories_pass(registry: str) -> None:
    done = audit(f"{registry}/pypi", "clean==1.0,withdrawn==3.0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 distributions, 2 clean, 0 with known vulnerabilities" in done.stdout


def test_a_known_vulnerability_fails_and_says_what_fixes_it(registry: str) -> None:
    done = audit(f"{registry}/pypi", "clean==1.0,vulnerable==2.0")
    assert done.returncode == 1
    assert "VULNERABLE vulnerable 2.0: PYSEC-2099-1 (CVE-2099-0001); fixed in: 2.0.1" in done.stdout
    assert "https://osv.dev/vulnerability/PYSEC-2099-1" in done.stdout


def test_what_the_registry_cannot_tell_is_listed_and_fails_only_when_strict(
    registry: str,
) -> None:
    pins = "moved-on==4.2,never-published==1.0"
    done = audit(f"{registry}/pypi", pins)
    assert done.returncode == 0
    assert "unverifiable moved-on 4.2: not the latest release (5.0)" in done.stdout
    assert "unverifiable never-published 1.0: not known to the registry" in done.stdout
    assert "2 unverifiable" in done.stdout
    assert audit(f"{registry}/pypi", pins, "--strict").returncode == 1


def test_a_registry_that_does_not_answer_is_not_a_pass(registry: str) -> None:
    failing = audit(f"{registry}/down", "clean==1.0")
    assert failing.returncode == 2
    assert "dependency audit not run" in failing.stderr and "HTTP 503" in failing.stderr
    closed = audit(f"http://127.0.0.1:{free_port()}/pypi", "clean==1.0")
    assert closed.returncode == 2
    assert "dependency audit not run" in closed.stderr


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_deps", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["audit_deps"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_the_default_scope_is_what_pyproject_declares_and_all_it_needs() -> None:
    found = _module().closure()
    # Declared (runtime and [test]) and pulled in by them, as installed here.
    for name in ("fastapi", "sqlalchemy", "ldap3", "pytest", "aiosmtpd", "schemathesis"):
        assert name in found, name
    for name in ("starlette", "pydantic-core", "pluggy", "pyasn1"):
        assert name in found, name
    assert "reclaim" not in found
