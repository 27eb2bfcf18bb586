"""The Graph test server for the scale tests: real clock (the processes under test read
the real one), a throwaway CA the in-process clients trust through the environment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reclaim.testing.graph import CA_ENV_VARS, GraphServer

from .world import build_tenant


@pytest.fixture
def graph_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[GraphServer]:
    """A Graph server on a private loopback port, stopped after the test."""
    import datetime as dt

    tenant, _ = build_tenant({"EMPTY": 0}, dt.datetime.now(dt.UTC))
    with GraphServer(tenant) as server:
        for name in CA_ENV_VARS:
            monkeypatch.setenv(name, str(server.ca_file))
        yield server
