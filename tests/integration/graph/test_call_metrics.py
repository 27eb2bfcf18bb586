"""Every Graph answer is counted for /metrics, and 429s also as throttles."""

from __future__ import annotations

from prometheus_client import REGISTRY

from reclaim.connectors.graph import GraphClient
from reclaim.testing.graph import GraphServer

from .conftest import ALICE, FakeTime


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_graph_calls_and_throttles_are_counted(
    server: GraphServer, client: GraphClient, fake_time: FakeTime
) -> None:
    ok_before = _value("reclaim_graph_requests_total", method="GET", status="2xx")
    throttled_before = _value("reclaim_graph_throttled_total")
    server.faults.throttle_next(2, retry_after=1, path=r"/v1.0/users/")

    client.get_user(ALICE)

    assert _value("reclaim_graph_requests_total", method="GET", status="2xx") == ok_before + 1
    assert _value("reclaim_graph_throttled_total") == throttled_before + 2
