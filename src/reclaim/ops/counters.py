"""Process-local counters the connectors bump: Graph and LDAP calls and throttles.

They live in :mod:`prometheus_client`'s default registry, so every process (web or
worker) exposes its own calls at ``/metrics`` and Prometheus sums them across
processes. Keeping them in one small module lets the connectors count without
knowing anything else about metrics.
"""

from __future__ import annotations

from prometheus_client import Counter

GRAPH_CALLS = Counter(
    "reclaim_graph_requests_total",
    "HTTP requests sent to Microsoft Graph, by method and status class.",
    ["method", "status"],
)
GRAPH_THROTTLES = Counter(
    "reclaim_graph_throttled_total",
    "Graph answers with 429 Too Many Requests (each one was retried or reported).",
)
LDAP_CALLS = Counter(
    "reclaim_ldap_operations_total",
    "LDAP operations sent to a domain controller, by operation and outcome.",
    ["operation", "outcome"],
)


def status_class(status: int) -> str:
    """'2xx', '4xx', ... — keeps the label set small."""
    return f"{status // 100}xx"


def count_graph(method: str, status: int) -> None:
    """Count one Graph answer (429s also count as throttles)."""
    GRAPH_CALLS.labels(method=method.upper(), status=status_class(status)).inc()
    if status == 429:
        GRAPH_THROTTLES.inc()


def count_ldap(operation: str, outcome: str) -> None:
    """Count one LDAP operation: ``operation`` is search/modify/..., ``outcome`` ok/error."""
    LDAP_CALLS.labels(operation=operation, outcome=outcome).inc()
