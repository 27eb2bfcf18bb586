"""The Entra token endpoint (client credentials) and bearer-token checks for Graph calls.

Access tokens are opaque random strings mapped to client, tenant and expiry; they can be
revoked from tests. Client assertions (certificate credentials) must be well-formed JWTs
whose ``iss`` and ``sub`` are the client id and whose ``aud`` is this tenant's token
endpoint; when the tenant file gives the app's certificate, the signature is verified too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from reclaim.testing.graph.clock import Clock
from reclaim.testing.graph.errors import GraphError
from reclaim.testing.graph.tenant import ClientApp, Tenant

TOKEN_LIFETIME = 3599
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class TokenInfo:
    """What an access token stands for."""

    client_id: str
    tenant_id: str
    audience: str
    expires: float
    revoked: bool = False


class AadError(Exception):
    """A token endpoint failure, rendered as Entra's OAuth error body."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(f"{status} {error} AADSTS{code}")
        self.status, self.error, self.code, self.description = status, error, code, description

    def body(self, now: str) -> dict[str, Any]:
        """``{"error", "error_description", "error_codes", ...}`` as Entra sends it."""
        trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
        return {
            "error": self.error,
            "error_description": f"AADSTS{self.code}: {self.description} Trace ID: {trace} "
            f"Correlation ID: {corr} Timestamp: {now}",
            "error_codes": [self.code],
            "timestamp": now,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }


class TokenStore:
    """Issued access tokens; thread-safe."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._tokens: dict[str, TokenInfo] = {}
        self._lock = threading.Lock()

    def issue(self, client_id: str, tenant_id: str, audience: str) -> str:
        """A fresh token valid for :data:`TOKEN_LIFETIME` seconds of the server clock."""
        token = "eyJ0eXAiOiJKV1Qi." + secrets.token_urlsafe(40)
        with self._lock:
            self._tokens[token] = TokenInfo(
                client_id, tenant_id, audience, self.clock.time() + TOKEN_LIFETIME
            )
        return token

    def revoke(self, client_id: str | None = None) -> int:
        """Revoke every token (of one client, if given); returns how many."""
        n = 0
        with self._lock:
            for info in self._tokens.values():
                if not info.revoked and client_id in (None, info.client_id):
                    info.revoked, n = True, n + 1
        return n

    def clear(self) -> None:
        """Forget every token (they all become unknown, hence invalid)."""
        with self._lock:
            self._tokens.clear()

    def check(self, authorization: str | None, tenant_id: str) -> TokenInfo:
        """Validate an ``Authorization`` header or raise Graph's 401."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise _unauthenticated("Access token is empty.")
        token = authorization[7:].strip()
        with self._lock:
            info = self._tokens.get(token)
        if info is None:
            raise _unauthenticated("Access token validation failure. Invalid audience.")
        if info.revoked:
            raise _unauthenticated("Access token has been revoked.")
        if info.tenant_id != tenant_id:
            raise _unauthenticated("Access token validation failure. Invalid issuer.")
        if self.clock.time() >= info.expires:
            raise _unauthenticated("Lifetime validation failed, the token is expired.")
        return info


def _unauthenticated(message: str) -> GraphError:
    return GraphError(
        401,
        "InvalidAuthenticationToken",
        message,
        {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
    )


def authenticate_client(
    tenant: Tenant, tenant_segment: str, form: dict[str, str], token_url: str
) -> ClientApp:
    """Check a client-credentials token request; returns the app or raises :class:`AadError`."""
    if tenant_segment.lower() not in (tenant.tenant_id.lower(), tenant.default_domain.lower()):
        raise AadError(400, "invalid_request", 90002, f"Tenant '{tenant_segment}' not found.")
    grant = form.get("grant_type", "")
    if grant != "client_credentials":
        raise AadError(
            400,
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant}'.",
        )
    client_id = form.get("client_id", "")
    app = tenant.clients.get(client_id)
    if app is None:
        raise AadError(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory "
            f"'{tenant.display_name}'.",
        )
    if not app.enabled:
        raise AadError(
            400, "unauthorized_client", 7000112, f"Application '{client_id}' is disabled."
        )
    scope = form.get("scope", "")
    if not any(s.endswith("/.default") for s in scope.split()):
        raise AadError(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential flows must "
            "have a scope value with /.default suffixed to the resource identifier.",
        )
    if "client_secret" in form:
        if app.client_secret is None or not secrets.compare_digest(
            form["client_secret"], app.client_secret
        ):
            raise AadError(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                f"the client secret value, not the client secret ID, for a secret added to app "
                f"'{client_id}'.",
            )
        return app
    if form.get("client_assertion_type") == ASSERTION_TYPE and "client_assertion" in form:
        check_assertion(app, form["client_assertion"], token_url)
        return app
    raise AadError(
        401,
        "invalid_client",
        7000216,
        "'client_assertion', 'client_secret' or 'request' is required for the "
        "'client_credentials' grant type.",
    )


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def check_assertion(app: ClientApp, assertion: str, token_url: str) -> None:
    """Validate a certificate client assertion (RFC 7523 JWT)."""
    try:
        head_b64, body_b64, sig_b64 = assertion.split(".")
        header = json.loads(_b64(head_b64))
        claims = json.loads(_b64(body_b64))
        signature = _b64(sig_b64)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise AadError(401, "invalid_client", 50027, "JWT token is invalid or malformed.") from None
    if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
        raise AadError(
            401,
            "invalid_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        )
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    if token_url not in auds:
        raise AadError(
            401,
            "invalid_client",
            700212,
            f"Client assertion audience claim does not match "
            f"Realm issuer. Expected: '{token_url}'.",
        )
    now = time.time()  # the client signs with its real clock, not the server's test clock
    if not (float(claims.get("nbf", 0)) - 300 <= now < float(claims.get("exp", 0)) + 300):
        raise AadError(
            401, "invalid_client", 700024, "Client assertion is not within its valid time range."
        )
    if app.certificate_pem:
        _verify_signature(app.certificate_pem, header, f"{head_b64}.{body_b64}".encode(), signature)


def _verify_signature(pem: str, header: dict[str, Any], signed: bytes, signature: bytes) -> None:
    cert = x509.load_pem_x509_certificate(pem.encode())
    der = cert.public_bytes(Encoding.DER)
    thumbs = {
        "x5t": base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode(),  # noqa: S324 - x5t is defined as SHA-1
        "x5t#S256": base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode(),
    }
    for key, expected in thumbs.items():
        # Some clients (MSAL) keep the base64 padding in x5t; compare without it.
        if key in header and str(header[key]).rstrip("=") != expected:
            raise AadError(
                401, "invalid_client", 700027, "Client assertion contains an invalid signature."
            )
    public = cert.public_key()
    if not isinstance(public, rsa.RSAPublicKey):
        raise AadError(401, "invalid_client", 700027, "Only RSA certificates are supported.")
    alg = header.get("alg")
    pad: padding.AsymmetricPadding = (
        padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)
        if alg == "PS256"
        else padding.PKCS1v15()
    )
    try:
        public.verify(signature, signed, pad, hashes.SHA256())
    except InvalidSignature:
        raise AadError(
            401, "invalid_client", 700027, "Client assertion failed signature validation."
        ) from None


def token_response(token: str) -> dict[str, Any]:
    """The success body of the token endpoint."""
    return {
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME,
        "ext_expires_in": TOKEN_LIFETIME,
        "access_token": token,
    }


def openid_configuration(base_url: str, tenant_id: str) -> dict[str, Any]:
    """The OIDC discovery document MSAL reads from ``{authority}/v2.0/.well-known/...``."""
    root = f"{base_url}/{tenant_id}"
    return {
        "token_endpoint": f"{root}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base_url}/{tenant_id}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{root}/v2.0",
        "request_uri_parameter_supported": False,
        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid"],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
    }
