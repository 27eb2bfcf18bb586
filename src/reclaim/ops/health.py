"""Liveness and readiness, for load balancers and orchestrators.

``/healthz`` answers as long as the process serves requests (it touches nothing).
``/readyz`` checks what a request needs: the database answers, its schema is the one
this code expects, and each configured directory is reachable (a TCP connection to
the Graph/authority host or a domain controller, with a short timeout; no credentials
are used, so a readiness probe can never lock an account).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import Engine, text

from reclaim.config import Settings
from reclaim.store.migrate import current_revision, head_revision

PROBE_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class Check:
    """One readiness check's result."""

    name: str
    ok: bool
    detail: str
    ms: int


def _timed(name: str, probe: Callable[[], str]) -> Check:
    start = time.perf_counter()
    try:
        detail, ok = probe(), True
    except Exception as exc:  # a failed probe is a result, not an error of the endpoint
        detail, ok = f"{type(exc).__name__}: {_first_line(exc)}", False
    return Check(name, ok, detail, int((time.perf_counter() - start) * 1000))


def _first_line(exc: BaseException) -> str:
    # Driver errors can be long and may quote a URL; the first line says enough.
    return (str(exc).splitlines() or [""])[0][:200]


def _database(engine: Engine) -> str:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return engine.dialect.name


def _schema(engine: Engine) -> str:
    current, head = current_revision(engine), head_revision(engine)
    if current != head:
        raise RuntimeError(f"schema at {current}, this version needs {head}")
    return f"at {head}"


def _tcp(host: str, port: int) -> Callable[[], str]:
    def probe() -> str:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT):
            return f"{host}:{port} reachable"

    return probe


def _endpoint(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return parts.hostname or "", parts.port or default


def directory_probes(settings: Settings) -> list[tuple[str, Callable[[], str]]]:
    """The directories the config names, as (check name, probe) pairs."""
    probes: list[tuple[str, Callable[[], str]]] = []
    if settings.entra is not None:
        graph_host, graph_port = _endpoint(settings.entra.graph_url)
        probes.append(("graph", _tcp(graph_host, graph_port)))
    if settings.ldap is not None:
        default = 636 if settings.ldap.use_ssl else 389
        for index, server in enumerate(settings.ldap.hosts):
            name, _, port = server.partition(":")
            probes.append((f"ldap[{index}]", _tcp(name, int(port) if port else default)))
    return probes


def readiness(engine: Engine, settings: Settings) -> list[Check]:
    """Run every readiness check (the schema check only once the database answers)."""
    checks = [_timed("database", lambda: _database(engine))]
    if checks[0].ok:
        checks.append(_timed("schema", lambda: _schema(engine)))
    checks.extend(_timed(name, probe) for name, probe in directory_probes(settings))
    return checks
