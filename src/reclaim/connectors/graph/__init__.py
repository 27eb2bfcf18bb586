"""Microsoft Graph (Entra ID) connector: read users and groups, change license-group membership.

Start with :class:`GraphClient` and :class:`GraphSettings`; see docs/graph.md.
"""

from reclaim.connectors.graph.auth import MsalTokenProvider, TokenProvider
from reclaim.connectors.graph.budget import (
    BudgetLimits,
    RateBudget,
    RequestCost,
    TokenBucketBudget,
    Unlimited,
    request_cost,
)
from reclaim.connectors.graph.client import GraphClient
from reclaim.connectors.graph.models import (
    USER_SELECT,
    USER_SELECT_WITH_SIGN_IN,
    GraphGroup,
    GraphUser,
    LicenseAssignmentState,
    MemberResult,
    MembersDelta,
    Outcome,
    SignInActivity,
    SubscribedSku,
)
from reclaim.connectors.graph.settings import (
    CHINA,
    CLOUDS,
    GLOBAL,
    US_GOV,
    US_GOV_DOD,
    ClientCertificate,
    ClientSecret,
    GraphCloud,
    GraphSettings,
    RetryPolicy,
    settings_from_config,
)

__all__ = [
    "CHINA",
    "CLOUDS",
    "GLOBAL",
    "USER_SELECT",
    "USER_SELECT_WITH_SIGN_IN",
    "US_GOV",
    "US_GOV_DOD",
    "BudgetLimits",
    "ClientCertificate",
    "ClientSecret",
    "GraphClient",
    "GraphCloud",
    "GraphGroup",
    "GraphSettings",
    "GraphUser",
    "LicenseAssignmentState",
    "MemberResult",
    "MembersDelta",
    "MsalTokenProvider",
    "Outcome",
    "RateBudget",
    "RequestCost",
    "RetryPolicy",
    "SignInActivity",
    "SubscribedSku",
    "TokenBucketBudget",
    "TokenProvider",
    "Unlimited",
    "request_cost",
    "settings_from_config",
]
