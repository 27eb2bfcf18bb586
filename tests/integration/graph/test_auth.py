"""Sign-in: client secret and certificate through MSAL, renewal, revocation, failures."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from reclaim.config import EntraSettings
from reclaim.connectors.errors import StopRun, Transient
from reclaim.connectors.graph import ClientCertificate, ClientSecret, settings_from_config
from reclaim.connectors.graph.settings import sha1_thumbprint
from reclaim.testing.graph import GraphServer

from .conftest import ALICE, CLIENT_ID, CLIENT_SECRET, ClientFactory, FakeTime, server_settings

TOKEN_PATH = r"/oauth2/v2\.0/token$"


def _certificate() -> tuple[str, str]:
    """(private key PEM, certificate PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reclaim-connector-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return key_pem, cert_pem


def test_token_by_client_secret(server: GraphServer, client) -> None:
    assert client.get_user(ALICE).upn == "alice@fabrikam.example"
    token_calls = server.requests.find("POST", TOKEN_PATH)
    assert [r.status for r in token_calls] == [200]
    # The token is reused: more calls, no more sign-ins.
    client.get_user(ALICE)
    client.get_group("e3000000-0000-0000-0000-0000000000e3")
    assert server.requests.count("POST", TOKEN_PATH) == 1


def test_token_by_certificate(server: GraphServer, make_client: ClientFactory) -> None:
    key_pem, cert_pem = _certificate()
    server.tenant.add_client("cert-app", certificate_pem=cert_pem)
    # A "cert file": key and certificate in one PEM; the thumbprint is taken from it.
    pem = key_pem + cert_pem
    settings = server_settings(
        server, client_id="cert-app", credential=ClientCertificate(lambda: pem)
    )
    client = make_client(settings=settings)
    assert client.get_user(ALICE).id == ALICE
    assert server.requests.find("POST", TOKEN_PATH)[-1].client_id == "cert-app"


def test_token_by_certificate_key_and_thumbprint(
    server: GraphServer, make_client: ClientFactory
) -> None:
    key_pem, cert_pem = _certificate()
    server.tenant.add_client("cert-app", certificate_pem=cert_pem)
    # The portal's SHA-1 thumbprint with colons, as admins sometimes paste it.
    thumb = ":".join(sha1_thumbprint(cert_pem)[i : i + 2] for i in range(0, 40, 2))
    credential = ClientCertificate(key_pem, thumbprint=thumb)
    client = make_client(
        settings=server_settings(server, client_id="cert-app", credential=credential)
    )
    assert client.get_user(ALICE).id == ALICE


def test_certificate_with_the_wrong_key_is_stoprun(
    server: GraphServer, make_client: ClientFactory
) -> None:
    _, cert_pem = _certificate()
    other_key, _ = _certificate()
    server.tenant.add_client("cert-app", certificate_pem=cert_pem)
    # Right thumbprint, wrong key: the assertion's signature fails (AADSTS700027).
    bad = ClientCertificate(other_key, thumbprint=sha1_thumbprint(cert_pem))
    client = make_client(settings=server_settings(server, client_id="cert-app", credential=bad))
    with pytest.raises(StopRun, match="credentials rejected") as info:
        client.get_user(ALICE)
    assert "700027" in str(info.value)


def test_unreadable_certificate_is_stoprun_before_any_request(
    server: GraphServer, make_client: ClientFactory
) -> None:
    settings = server_settings(server, credential=ClientCertificate("not a pem"))
    with pytest.raises(StopRun, match="no private key"):
        make_client(settings=settings).get_user(ALICE)
    assert server.requests.count("POST", TOKEN_PATH) == 0


def test_wrong_secret_is_stoprun_credentials_rejected(
    server: GraphServer, make_client: ClientFactory
) -> None:
    client = make_client(settings=server_settings(server, credential=ClientSecret("wrong")))
    with pytest.raises(StopRun, match="credentials rejected") as info:
        client.get_user(ALICE)
    assert info.value.code == "graph-token-invalid_client"
    assert "7000215" in info.value.detail
    assert "wrong" not in info.value.detail  # the secret never shows up in messages
    assert server.requests.count("GET", "/v1.0/") == 0


def test_secret_provider_failure_is_stoprun_without_its_message(
    server: GraphServer, make_client: ClientFactory
) -> None:
    def provider() -> str:
        raise KeyError("RECLAIM_GRAPH_SECRET=hunter2")

    client = make_client(settings=server_settings(server, credential=ClientSecret(provider)))
    with pytest.raises(StopRun, match="could not read the client secret") as info:
        client.get_user(ALICE)
    assert "hunter2" not in str(info.value)


def test_token_is_renewed_before_expiry(server: GraphServer, client, fake_time: FakeTime) -> None:
    client.get_user(ALICE)
    fake_time.clock.advance(3599 - 200)  # inside the 5-minute renewal margin
    client.get_user(ALICE)
    assert server.requests.count("POST", TOKEN_PATH) == 2
    assert server.requests.count(status=401) == 0  # renewed proactively, never rejected


def test_token_rejected_by_graph_is_renewed_once(server: GraphServer, client) -> None:
    client.get_user(ALICE)
    server.revoke_tokens()  # e.g. a secret rotation invalidating issued tokens
    assert client.get_user(ALICE).id == ALICE
    assert server.requests.count("GET", r"/users/", status=401) == 1
    assert server.requests.count("POST", TOKEN_PATH) == 2


def test_credentials_revoked_mid_run_is_stoprun(server: GraphServer, client) -> None:
    client.get_user(ALICE)
    server.disable_client(CLIENT_ID)
    with pytest.raises(StopRun, match="disabled") as info:
        client.get_user(ALICE)
    assert "7000112" in info.value.detail


def test_token_endpoint_outage_is_transient_with_retry_after(server: GraphServer, client) -> None:
    server.faults.fail_token_endpoint(1, 503, retry_after=30)
    with pytest.raises(Transient) as info:
        client.get_user(ALICE)
    assert info.value.retry_after == 30
    assert server.requests.count("GET", "/v1.0/") == 0


def test_settings_from_the_config_file_resolve_secrets_lazily(
    server: GraphServer,
    make_client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # As the config file gives them: secret references, resolved at sign-in.
    entra = EntraSettings.model_validate(
        {
            "tenant_id": server.tenant.tenant_id,
            "client_id": CLIENT_ID,
            "client_secret": "env:RECLAIM_TEST_GRAPH_SECRET",
            "authority_host": server.base_url,
            "graph_url": server.base_url,
        }
    )
    settings = settings_from_config(entra, ca_file=str(server.ca_file))
    with pytest.raises(StopRun, match="RECLAIM_TEST_GRAPH_SECRET is not set"):
        make_client(settings=settings).get_user(ALICE)
    monkeypatch.setenv("RECLAIM_TEST_GRAPH_SECRET", CLIENT_SECRET)
    assert make_client(settings=settings).get_user(ALICE).id == ALICE

    key_pem, cert_pem = _certificate()
    server.tenant.add_client("cert-app", certificate_pem=cert_pem)
    pem_file = tmp_path / "reclaim-app.pem"
    pem_file.write_text(key_pem + cert_pem)
    entra = EntraSettings.model_validate(
        {
            "tenant_id": server.tenant.tenant_id,
            "client_id": "cert-app",
            "certificate_file": f"file:{pem_file}",
            "authority_host": server.base_url,
            "graph_url": server.base_url,
            "ca_file": str(server.ca_file),  # the test server's CA, from the config
            "tenant_size": "L",
        }
    )
    settings = settings_from_config(entra)
    assert settings.ca_file == str(server.ca_file) and settings.tenant_size == "L"
    assert make_client(settings=settings).get_user(ALICE).id == ALICE
