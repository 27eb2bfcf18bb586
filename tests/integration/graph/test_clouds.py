"""National clouds: sign-in authority, token scope and Graph URLs per cloud.

The test server answers on one root (``/v1.0`` on its own host, no path prefix), so the
cloud hosts are checked at the HTTP boundary instead: an ``httpx.MockTransport`` records
what the connector (and MSAL through it) would send. Nothing leaves the process.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import httpx
import pytest

from reclaim.connectors.errors import StopRun
from reclaim.connectors.graph import (
    CHINA,
    CLOUDS,
    GLOBAL,
    US_GOV,
    US_GOV_DOD,
    ClientSecret,
    GraphClient,
    GraphCloud,
    GraphSettings,
    MsalTokenProvider,
    Unlimited,
)

TENANT = "0d1e2f3a-4b5c-4d6e-8f90-a1b2c3d4e5f6"
CLIENT = "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d"
USER = "a11ce000-0000-0000-0000-000000000001"
GROUP = "e3000000-0000-0000-0000-0000000000e3"

EXPECTED = {
    "global": ("https://login.microsoftonline.com", "https://graph.microsoft.com"),
    "us-gov": ("https://login.microsoftonline.us", "https://graph.microsoft.us"),
    "us-gov-dod": ("https://login.microsoftonline.us", "https://dod-graph.microsoft.us"),
    "china": ("https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"),
}


class StaticToken:
    """A TokenProvider for URL tests that never signs in."""

    def token(self) -> str:
        return "static-test-token"

    def invalidate(self, token: str) -> None:
        pass


def _settings(cloud: GraphCloud) -> GraphSettings:
    return GraphSettings.for_cloud(
        cloud, tenant_id=TENANT, client_id=CLIENT, credential=ClientSecret("fake-secret")
    )


@pytest.mark.parametrize("cloud", [GLOBAL, US_GOV, US_GOV_DOD, CHINA], ids=lambda c: c.name)
def test_cloud_constants_build_authority_scope_and_root(cloud: GraphCloud) -> None:
    login, graph = EXPECTED[cloud.name]
    settings = _settings(cloud)
    assert settings.authority == f"{login}/{TENANT}"
    assert settings.api_root == f"{graph}/v1.0"
    assert settings.token_scope == f"{graph}/.default"
    assert cloud.docs.startswith("https://learn.microsoft.com/")
    assert CLOUDS[cloud.name] is cloud


@pytest.mark.parametrize("cloud", [GLOBAL, US_GOV, US_GOV_DOD, CHINA], ids=lambda c: c.name)
def test_graph_calls_go_to_the_cloud_host(cloud: GraphCloud) -> None:
    _, graph = EXPECTED[cloud.name]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "GET":
            return httpx.Response(200, json={"id": USER, "userPrincipalName": "a@b"})
        return httpx.Response(204)

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = GraphClient(
        _settings(cloud), token_provider=StaticToken(), http=http, budget=Unlimited()
    )
    client.get_user("guest_x.example#EXT#@tenant.example")
    client.add_member(GROUP, USER)
    client.remove_member(GROUP, USER)
    assert [str(r.url) for r in seen] == [
        f"{graph}/v1.0/users/guest_x.example%23EXT%23@tenant.example?$select="
        "id,userPrincipalName,displayName,mail,accountEnabled,userType,onPremisesSyncEnabled,"
        "onPremisesSamAccountName,onPremisesSecurityIdentifier,licenseAssignmentStates",
        f"{graph}/v1.0/groups/{GROUP}/members/$ref",
        f"{graph}/v1.0/groups/{GROUP}/members/{USER}/$ref",
    ]
    assert json.loads(seen[1].content) == {"@odata.id": f"{graph}/v1.0/directoryObjects/{USER}"}
    assert seen[0].headers["authorization"] == "Bearer static-test-token"


@pytest.mark.parametrize("cloud", [US_GOV, US_GOV_DOD, CHINA], ids=lambda c: c.name)
def test_msal_signs_in_at_the_cloud_authority(cloud: GraphCloud) -> None:
    login, graph = EXPECTED[cloud.name]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/openid-configuration"):
            root = f"{login}/{TENANT}"
            return httpx.Response(
                200,
                json={
                    "token_endpoint": f"{root}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
                    "issuer": f"{root}/v2.0",
                },
            )
        return httpx.Response(
            200, json={"token_type": "Bearer", "expires_in": 3599, "access_token": "t-1"}
        )

    http = httpx.Client(transport=httpx.MockTransport(handler))
    provider = MsalTokenProvider(_settings(cloud), http=http)
    assert provider.token() == "t-1"
    assert [str(r.url) for r in seen] == [
        f"{login}/{TENANT}/v2.0/.well-known/openid-configuration",
        f"{login}/{TENANT}/oauth2/v2.0/token",
    ]
    form = parse_qs(seen[1].content.decode())
    assert form["scope"] == [f"{graph}/.default"]
    assert form["client_secret"] == ["fake-secret"]
    assert provider.token() == "t-1" and len(seen) == 2  # cached


def test_custom_hosts_and_path_prefix() -> None:
    settings = GraphSettings(
        tenant_id=TENANT,
        client_id=CLIENT,
        credential=ClientSecret("x"),
        authority_host="https://login.example.test/",
        graph_url="https://gateway.example.test/graph/",
    )
    assert settings.authority == f"https://login.example.test/{TENANT}"
    assert settings.api_root == "https://gateway.example.test/graph/v1.0"
    with pytest.raises(ValueError, match="https"):
        GraphSettings(
            tenant_id=TENANT,
            client_id=CLIENT,
            credential=ClientSecret("x"),
            graph_url="http://graph.microsoft.com",
        )


def test_links_to_other_hosts_are_not_followed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={"value": [], "@odata.nextLink": "https://evil.example/v1.0/groups/x/members"},
        )

    http = httpx.Client(transport=httpx.MockTransport(handler))
    client = GraphClient(_settings(GLOBAL), token_provider=StaticToken(), http=http)
    with pytest.raises(StopRun, match="link outside"):
        list(client.list_members(GROUP))
