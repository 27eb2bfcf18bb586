"""A Microsoft Graph-compatible test server (Entra ID users, groups, licensing, throttling).

Start it in-process with :class:`GraphServer` (or :func:`running_graph_server`), build a
tenant with :class:`Tenant` or :func:`load_tenant`; see docs/graph-server.md.
"""

from reclaim.testing.graph.clock import ManualClock, SystemClock
from reclaim.testing.graph.faults import FaultRule, Faults
from reclaim.testing.graph.reqlog import RequestLog, RequestRecord
from reclaim.testing.graph.server import CA_ENV_VARS, GraphServer, main, running_graph_server, serve
from reclaim.testing.graph.tenant import Group, Sku, Tenant, User
from reclaim.testing.graph.tenant_file import load_tenant, tenant_from_dict
from reclaim.testing.graph.throttle import ThrottleConfig

__all__ = [
    "CA_ENV_VARS",
    "FaultRule",
    "Faults",
    "GraphServer",
    "Group",
    "ManualClock",
    "RequestLog",
    "RequestRecord",
    "Sku",
    "SystemClock",
    "Tenant",
    "ThrottleConfig",
    "User",
    "load_tenant",
    "main",
    "running_graph_server",
    "serve",
    "tenant_from_dict",
]
