"""OpenID Connect sign-in (authorization code flow with PKCE), e.g. with Entra ID.

Only the protocol lives here; the pages that start and finish it are in
``web/ui/login.py``. The request URL and token request are built with authlib's
RFC 6749 / RFC 7636 helpers, and the ID token is verified with joserfc (authlib's JOSE
successor): signature against the provider's published keys, issuer, audience,
expiry and the nonce we sent. ``state`` (CSRF for the redirect), ``nonce`` and the
PKCE verifier are kept in the signed session cookie between the two steps.

Who may sign in is decided by Reclaim, not the provider: an account must exist
(``reclaim accounts create EMAIL --role R --sso-only``). At the first sign-in it is
matched by e-mail and then bound to the provider's subject (see ``accounts``).
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from reclaim.web.settings import OidcSettings

ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


class OidcError(Exception):
    """The sign-in cannot be completed; the message is safe to show."""


@dataclass(frozen=True)
class Pending:
    """What the first step keeps in the session for the second."""

    state: str
    nonce: str
    verifier: str
    next: str

    def as_dict(self) -> dict[str, str]:
        """For the session cookie."""
        return {
            "state": self.state,
            "nonce": self.nonce,
            "verifier": self.verifier,
            "next": self.next,
        }

    @classmethod
    def from_dict(cls, data: dict[str, str] | None) -> Pending | None:
        """From the session cookie (None if absent or malformed)."""
        if not data:
            return None
        try:
            return cls(data["state"], data["nonce"], data["verifier"], data["next"])
        except KeyError:
            return None


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in."""

    subject: str  # "issuer|sub": unique across providers
    email: str | None
    name: str | None


class OidcClient:
    """A relying party for one provider; provider metadata and keys are cached."""

    def __init__(
        self, settings: OidcSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self._transport = transport
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._lock = asyncio.Lock()

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self._transport, timeout=10.0, follow_redirects=False)

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document, fetched once and checked."""
        async with self._lock:
            if self._metadata is None:
                data = await self._get_json(self.settings.metadata_url)
                if data.get("issuer") != self.settings.issuer:
                    raise OidcError(
                        "the provider's discovery document names another issuer "
                        f"({data.get('issuer')!r}); check RECLAIM_OIDC_ISSUER"
                    )
                for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                    if not isinstance(data.get(key), str):
                        raise OidcError(f"the provider's discovery document lacks {key}")
                self._metadata = data
            return self._metadata

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with self._http() as client:
                response = await client.get(url)
                response.raise_for_status()
                data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise OidcError(
                f"the sign-in provider cannot be reached ({type(exc).__name__})"
            ) from None
        if not isinstance(data, dict):
            raise OidcError("the sign-in provider answered with something unexpected")
        return data

    async def start(self, *, redirect_uri: str, next_path: str) -> tuple[str, Pending]:
        """The provider URL to send the browser to, and what to keep until it returns."""
        meta = await self.metadata()
        pending = Pending(
            state=secrets.token_urlsafe(24),
            nonce=secrets.token_urlsafe(24),
            verifier=generate_token(64),
            next=next_path,
        )
        url = prepare_grant_uri(
            meta["authorization_endpoint"],
            self.settings.client_id,
            "code",
            redirect_uri=redirect_uri,
            scope=self.settings.scopes,
            state=pending.state,
            nonce=pending.nonce,
            code_challenge=create_s256_code_challenge(pending.verifier),
            code_challenge_method="S256",
        )
        return url, pending

    async def finish(
        self, *, pending: Pending | None, state: str, code: str, redirect_uri: str, now: int
    ) -> Identity:
        """Check ``state``, exchange ``code``, verify the ID token; the signed-in identity."""
        if pending is None or not hmac.compare_digest(pending.state.encode(), state.encode()):
            # A callback we did not start (or for another browser): refuse it.
            raise OidcError("the sign-in response does not match a sign-in started here")
        meta = await self.metadata()
        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=redirect_uri,
            code_verifier=pending.verifier,
        )
        try:
            async with self._http() as client:
                response = await client.post(
                    meta["token_endpoint"],
                    content=body,
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                    auth=(self.settings.client_id, self.settings.client_secret),
                )
            tokens = response.json()
        except (httpx.HTTPError, ValueError):
            raise OidcError("the sign-in provider could not be reached to finish") from None
        if response.status_code != 200 or not isinstance(tokens, dict):
            raise OidcError("the sign-in provider refused the sign-in code")
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("the sign-in provider sent no ID token")
        claims = await self._verify(id_token, nonce=pending.nonce, now=now)
        email = claims.get("email") or claims.get("preferred_username")
        return Identity(
            subject=f"{claims['iss']}|{claims['sub']}",
            email=email if isinstance(email, str) else None,
            name=claims.get("name") if isinstance(claims.get("name"), str) else None,
        )

    async def _verify(self, id_token: str, *, nonce: str, now: int) -> dict[str, Any]:
        keys = await self._keyset(refresh=False)
        try:
            try:
                token = jwt.decode(id_token, keys, algorithms=ID_TOKEN_ALGORITHMS)
            except JoseError:
                # The provider may have rotated its keys since we fetched them: once more.
                keys = await self._keyset(refresh=True)
                token = jwt.decode(id_token, keys, algorithms=ID_TOKEN_ALGORITHMS)
            registry = jwt.JWTClaimsRegistry(
                now=now,
                leeway=60,
                iss={"essential": True, "value": self.settings.issuer},
                aud={"essential": True, "value": self.settings.client_id},
                sub={"essential": True},
                exp={"essential": True},
                nonce={"essential": True, "value": nonce},
            )
            registry.validate(token.claims)
        except (JoseError, ValueError) as exc:
            raise OidcError(f"the ID token is not valid ({type(exc).__name__})") from None
        return dict(token.claims)

    async def _keyset(self, *, refresh: bool) -> KeySet:
        if self._keys is None or refresh:
            meta = await self.metadata()
            data = await self._get_json(meta["jwks_uri"])
            try:
                self._keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
            except (JoseError, ValueError, KeyError, TypeError):
                raise OidcError("the sign-in provider published keys we cannot read") from None
        return self._keys
