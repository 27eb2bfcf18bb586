"""Fixtures for the fault runs: the peers of tests/integration, reused as they are.

The Graph test server (and its fake clock) comes from tests/integration/entra, the
Samba DCs from tests/integration, the hybrid mirror from tests/integration/onprem.
"""

from __future__ import annotations

import pytest

from reclaim.testing.graph import GraphServer
from tests.integration.conftest import (  # noqa: F401  (fixtures)
    admin,
    dc1,
    make_settings,
    restore_seed_membership,
    samba_addresses,
    samba_dc,
    samba_template,
)
from tests.integration.entra.conftest import _running_server, clock, server  # noqa: F401
from tests.integration.onprem.conftest import (  # noqa: F401
    _graph_server,
    graph,
    graph_clock,
    hybrid,
    make_directory,
    make_runner,
    run_group,
)


@pytest.fixture
def hybrid_server(_graph_server: GraphServer) -> GraphServer:  # noqa: F811
    """The Graph test server of the hybrid tests (session-wide), under a public name."""
    return _graph_server
