"""App-only tokens for Graph: MSAL client credentials with a secret or a certificate.

MSAL does the OAuth work (client assertion signing, its token cache); this module
decides *when* to ask (a token is reused until shortly before it expires, by our own
clock, and dropped at once when Graph rejects it) and turns token-endpoint failures into
connector errors: an unreachable or overloaded endpoint is Unavailable (a Transient that
stops the runner's pass: no case can get further), rejected credentials, an unknown or
disabled app and a wrong tenant are StopRun.

MSAL speaks HTTP through :class:`MsalHttpClient`, an adapter over the connector's own
httpx client, so the same TLS trust, proxy and timeout settings apply to sign-in and to
Graph (MSAL documents this hook: ``http_client`` "similar to ... requests, aiohttp and
httpx").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import httpx
import msal

from reclaim.connectors.errors import StopRun, Transient, Unavailable
from reclaim.connectors.graph.errors import parse_retry_after
from reclaim.connectors.graph.settings import (
    ClientCertificate,
    ClientSecret,
    GraphSettings,
    certificate_credential,
    read_secret,
)

log = logging.getLogger("reclaim.connectors.graph")

# Renew this long before expiry: a token must not die between being handed out and use.
REFRESH_MARGIN_SECONDS = 300.0

# OAuth errors that mean "this app cannot sign in until an admin acts".
_CREDENTIAL_ERRORS = {
    "invalid_client": "credentials rejected",
    "unauthorized_client": "application unknown to the tenant or disabled",
    "invalid_scope": "scope refused (check graph_url / scope)",
    "invalid_request": "sign-in request refused (check tenant_id and authority_host)",
    "unsupported_grant_type": "client credentials grant refused",
}
_TRANSIENT_ERRORS = {"temporarily_unavailable", "server_error"}


class TokenProvider(Protocol):
    """Hands out bearer tokens for Graph."""

    def token(self) -> str:
        """A valid access token (cached while it has time left)."""
        ...

    def invalidate(self, token: str) -> None:
        """Graph rejected ``token``: the next :meth:`token` must fetch a new one."""
        ...


class MsalHttpClient:
    """MSAL's ``http_client`` over httpx; remembers the last Retry-After per thread."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client
        self._local = threading.local()

    @property
    def last_retry_after(self) -> float | None:
        """Retry-After of this thread's most recent failed token-endpoint answer."""
        return getattr(self._local, "retry_after", None)

    def reset(self) -> None:
        """Forget the last Retry-After (before a new token request)."""
        self._local.retry_after = None

    def _note(self, resp: httpx.Response) -> httpx.Response:
        if resp.status_code == 429 or resp.status_code >= 500:
            self._local.retry_after = parse_retry_after(resp.headers.get("retry-after"))
        return resp

    def post(
        self,
        url: str,
        params: dict[str, str] | None = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """POST a form (dict) or a raw body (str), as MSAL's interface asks."""
        if isinstance(data, dict):
            # MSAL hands the client assertion over as bytes; httpx would send "b'...'".
            form = {k: v.decode() if isinstance(v, bytes) else v for k, v in data.items()}
            resp = self._client.post(url, params=params, data=form, headers=headers)
        else:
            resp = self._client.post(url, params=params, content=data, headers=headers)
        return self._note(resp)

    def get(
        self,
        url: str,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """GET (OIDC discovery)."""
        return self._note(self._client.get(url, params=params, headers=headers))

    def close(self) -> None:
        """The httpx client belongs to the connector, which closes it."""


def _short(description: str) -> str:
    # Entra appends "Trace ID: ... Correlation ID: ... Timestamp: ..." - noise in a case log.
    return description.split(" Trace ID:", 1)[0].strip()


def token_error(result: dict[str, Any], retry_after: float | None) -> Transient | StopRun:
    """The connector error for MSAL's error dict from the token endpoint."""
    error = str(result.get("error") or "unknown_error")
    codes = result.get("error_codes") or []
    text = _short(str(result.get("error_description") or error))
    tag = f"graph-token-{error}"
    if error in _TRANSIENT_ERRORS:
        return Unavailable(f"token endpoint unavailable: {text}", code=tag, retry_after=retry_after)
    reason = _CREDENTIAL_ERRORS.get(error, "sign-in refused")
    return StopRun(f"{reason}: {text} (codes {codes})", code=tag)


class MsalTokenProvider:
    """Client-credentials tokens from MSAL, renewed before they expire; thread-safe.

    ``clock`` is wall-clock seconds (injectable so tests can expire tokens without
    waiting). The credential's source is read when the MSAL app is built and again at
    each renewal; a changed secret rebuilds the app.
    """

    def __init__(
        self,
        settings: GraphSettings,
        *,
        http: httpx.Client,
        clock: Callable[[], float] = time.time,
        refresh_margin: float = REFRESH_MARGIN_SECONDS,
    ) -> None:
        self.settings = settings
        self._http = MsalHttpClient(http)
        self._clock = clock
        self._margin = refresh_margin
        self._lock = threading.Lock()
        self._app: msal.ConfidentialClientApplication | None = None
        self._app_credential: object = None
        self._token: str | None = None
        self._expires_at = 0.0
        self._drop_cached = False
        self.fetches = 0  # how many tokens came from the endpoint (not MSAL's cache)

    def token(self) -> str:
        """A token with more than ``refresh_margin`` seconds left, fetched if need be."""
        with self._lock:
            if self._token is not None and self._clock() < self._expires_at - self._margin:
                return self._token
            if self._token is not None:
                # Our clock says it is (nearly) expired; MSAL's cache must not hand it back.
                self._drop_cached = True
            return self._acquire()

    def invalidate(self, token: str) -> None:
        """Drop ``token`` (Graph answered 401): the next call fetches a fresh one."""
        with self._lock:
            if token == self._token:
                self._token = None
                self._drop_cached = True

    def _credential(self) -> str | dict[str, str]:
        cred = self.settings.credential
        if isinstance(cred, ClientSecret):
            return read_secret(cred.secret, "client secret")
        if isinstance(cred, ClientCertificate):
            return certificate_credential(cred)
        raise TypeError(f"unsupported credential {type(cred).__name__}")

    def _application(self) -> msal.ConfidentialClientApplication:
        credential = self._credential()
        if self._app is not None and credential == self._app_credential:
            return self._app
        try:
            app = msal.ConfidentialClientApplication(
                self.settings.client_id,
                client_credential=credential,
                authority=self.settings.authority,
                http_client=self._http,
                # The authority is configured explicitly per cloud: no alias lookup at
                # login.microsoftonline.com (which a national cloud or test peer is not).
                instance_discovery=False,
            )
        except httpx.TransportError as exc:
            raise Unavailable(
                f"cannot reach the sign-in endpoint {self.settings.authority_host} ({exc})",
                code="graph-token-unreachable",
            ) from exc
        except ValueError as exc:
            # MSAL's OIDC discovery raises ValueError on a 4xx: unknown tenant or host.
            raise StopRun(
                f"sign-in authority {self.settings.authority} refused discovery: "
                f"{_short(str(exc))}",
                code="graph-token-authority",
            ) from None
        self._app, self._app_credential = app, credential
        return app

    def _acquire(self) -> str:
        app = self._application()
        if self._drop_cached:
            app.remove_tokens_for_client()
            self._drop_cached = False
        self._http.reset()
        try:
            result = app.acquire_token_for_client(scopes=[self.settings.token_scope])
        except httpx.TransportError as exc:
            raise Unavailable(
                f"cannot reach the token endpoint ({type(exc).__name__}: {exc})",
                code="graph-token-unreachable",
            ) from exc
        except msal.exceptions.MsalServiceError as exc:
            # MSAL raises this for 5xx answers (and replays them for their Retry-After).
            raise Unavailable(
                f"token endpoint failed: {exc}",
                code="graph-token-5xx",
                retry_after=self._http.last_retry_after,
            ) from exc
        if "access_token" not in result:
            raise token_error(result, self._http.last_retry_after)
        self._token = str(result["access_token"])
        self._expires_at = self._clock() + float(result.get("expires_in") or 0)
        if result.get("token_source") != "cache":
            self.fetches += 1
            log.info(
                "Graph: token acquired for app %s (expires in %ss)",
                self.settings.client_id,
                result.get("expires_in"),
            )
        return self._token
