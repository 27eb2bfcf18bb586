"""Token endpoint, OIDC discovery, MSAL against the server, and bearer-token checks."""

from __future__ import annotations

import datetime as dt
import hashlib

import httpx
import msal
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from reclaim.testing.graph import GraphServer, ManualClock

from .conftest import CLIENT_ID, CLIENT_SECRET, assert_graph_error

SCOPE = "https://graph.microsoft.com/.default"


def _token_request(server: GraphServer, **form: str) -> httpx.Response:
    data = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "scope": SCOPE} | form
    return httpx.post(server.token_url, data=data, verify=server.ssl_context())


def test_client_secret_gets_bearer_token(server: GraphServer) -> None:
    resp = _token_request(server, client_secret=CLIENT_SECRET)
    assert resp.status_code == 200
    body = resp.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599
    assert body["ext_expires_in"] == 3599
    assert body["access_token"]


def test_wrong_secret_is_401_invalid_client_7000215(server: GraphServer) -> None:
    resp = _token_request(server, client_secret="nope")
    assert resp.status_code == 401
    body = resp.json()
    assert body["error"] == "invalid_client"
    assert body["error_codes"] == [7000215]
    assert body["error_description"].startswith("AADSTS7000215:")
    assert {"timestamp", "trace_id", "correlation_id"} <= set(body)


@pytest.mark.parametrize(
    ("form", "status", "error", "code"),
    [
        ({"client_id": "unknown-app", "client_secret": "x"}, 400, "unauthorized_client", 700016),
        ({"scope": "User.Read", "client_secret": CLIENT_SECRET}, 400, "invalid_scope", 1002012),
        ({"grant_type": "password", "client_secret": "x"}, 400, "unsupported_grant_type", 70003),
        ({}, 401, "invalid_client", 7000216),
    ],
)
def test_token_errors_use_aad_error_body(
    server: GraphServer, form: dict[str, str], status: int, error: str, code: int
) -> None:
    resp = _token_request(server, **form)
    assert resp.status_code == status
    assert resp.json()["error"] == error
    assert resp.json()["error_codes"] == [code]


def test_unknown_tenant_is_rejected(server: GraphServer) -> None:
    url = f"{server.base_url}/not-a-tenant/oauth2/v2.0/token"
    data = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "scope": SCOPE,
        "client_secret": CLIENT_SECRET,
    }
    resp = httpx.post(url, data=data, verify=server.ssl_context())
    assert resp.status_code == 400
    assert resp.json()["error_codes"] == [90002]


def test_openid_configuration_points_back_at_server(server: GraphServer) -> None:
    url = f"{server.authority}/v2.0/.well-known/openid-configuration"
    conf = httpx.get(url, verify=server.ssl_context()).json()
    assert conf["token_endpoint"] == server.token_url
    assert conf["issuer"] == f"{server.authority}/v2.0"
    assert conf["authorization_endpoint"].startswith(server.authority)


def test_msal_acquires_token_with_secret(server: GraphServer) -> None:
    app = msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential=CLIENT_SECRET,
        authority=server.authority,
        instance_discovery=False,
        verify=str(server.ca_file),
    )
    result = app.acquire_token_for_client(scopes=[SCOPE])
    assert "access_token" in result, result
    me = httpx.get(
        f"{server.graph_url}/users/bob@contoso.example",
        headers={"Authorization": f"Bearer {result['access_token']}"},
        verify=server.ssl_context(),
    )
    assert me.status_code == 200
    # MSAL caches: a second call does not hit the token endpoint again.
    app.acquire_token_for_client(scopes=[SCOPE])
    assert server.requests.count("POST", r"/oauth2/v2.0/token$") == 1


def test_msal_reports_wrong_secret(server: GraphServer) -> None:
    app = msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential="wrong",
        authority=server.authority,
        instance_discovery=False,
        verify=str(server.ca_file),
    )
    result = app.acquire_token_for_client(scopes=[SCOPE])
    assert result["error"] == "invalid_client"
    assert 7000215 in result["error_codes"]


def _certificate() -> tuple[str, str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reclaim-test-app")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    pem_cert = cert.public_bytes(serialization.Encoding.PEM).decode()
    thumb = hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return pem_key, pem_cert, thumb


def test_msal_certificate_assertion_is_verified(server: GraphServer) -> None:
    key, cert, thumb = _certificate()
    server.tenant.add_client("cert-app", certificate_pem=cert)
    good = msal.ConfidentialClientApplication(
        "cert-app",
        client_credential={"private_key": key, "thumbprint": thumb},
        authority=server.authority,
        instance_discovery=False,
        verify=str(server.ca_file),
    )
    assert "access_token" in good.acquire_token_for_client(scopes=[SCOPE])
    other_key, _, _ = _certificate()
    bad = msal.ConfidentialClientApplication(
        "cert-app",
        client_credential={"private_key": other_key, "thumbprint": thumb},
        authority=server.authority,
        instance_discovery=False,
        verify=str(server.ca_file),
    )
    result = bad.acquire_token_for_client(scopes=[SCOPE])
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [700027]


def test_assertion_with_wrong_audience_is_refused(server: GraphServer) -> None:
    import base64
    import json
    import time

    def b64(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    claims = {
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "aud": "https://elsewhere/token",
        "exp": time.time() + 300,
        "nbf": time.time(),
    }
    jwt = f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{b64(claims)}.c2ln"
    resp = _token_request(
        server,
        client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion=jwt,
    )
    assert resp.status_code == 401
    assert resp.json()["error_codes"] == [700212]
    claims["aud"] = server.token_url
    ok = f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{b64(claims)}.c2ln"
    resp = _token_request(
        server,
        client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion=ok,
    )
    assert resp.status_code == 200  # no certificate configured: well-formed is enough


def test_graph_without_token_is_401(server: GraphServer) -> None:
    resp = httpx.get(f"{server.graph_url}/users", verify=server.ssl_context())
    assert_graph_error(resp, 401, "InvalidAuthenticationToken", "Access token is empty.")


def test_graph_with_bad_token_is_401(server: GraphServer) -> None:
    resp = httpx.get(
        f"{server.graph_url}/users",
        headers={"Authorization": "Bearer forged"},
        verify=server.ssl_context(),
    )
    assert_graph_error(resp, 401, "InvalidAuthenticationToken")


def test_revoked_token_is_401_mid_run(server: GraphServer, client: httpx.Client) -> None:
    assert client.get("/users").status_code == 200
    assert server.revoke_tokens() == 1
    assert_graph_error(client.get("/users"), 401, "InvalidAuthenticationToken")


def test_disabled_client_cannot_get_new_token(server: GraphServer) -> None:
    server.disable_client(CLIENT_ID)
    resp = _token_request(server, client_secret=CLIENT_SECRET)
    assert resp.status_code == 400
    assert resp.json()["error_codes"] == [7000112]


def test_token_expires_on_server_clock(
    server: GraphServer, client: httpx.Client, clock: ManualClock
) -> None:
    clock.advance(3600)
    resp = client.get("/users")
    assert_graph_error(
        resp, 401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired."
    )
