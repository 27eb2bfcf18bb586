"""Web app settings, read from environment variables with safe defaults.

They live here rather than in ``reclaim.yaml`` for now (``config.py`` belongs to the
core); every variable is listed in ``docs/web.md``. Nothing is read at import time:
:meth:`WebSettings.from_env` is called by the app factory.

The session-signing secret comes from ``RECLAIM_WEB_SECRET`` (at least 32
characters), else from ``DATA_DIR/web-secret``, which is generated on first use with
owner-only permissions (0600). It is never logged.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

SECRET_ENV = "RECLAIM_WEB_SECRET"  # noqa: S105 (names, not secrets)
SECRET_FILE = "web-secret"  # noqa: S105
MIN_SECRET_LENGTH = 32


class WebSettingsError(ValueError):
    """An environment variable for the web app has a value that cannot be used."""


@dataclass(frozen=True)
class OidcSettings:
    """OpenID Connect sign-in (Entra ID or any OIDC provider). Off unless configured."""

    issuer: str  # e.g. https://login.microsoftonline.com/{tenant}/v2.0
    client_id: str
    client_secret: str = field(repr=False)
    redirect_url: str | None = None  # default: derived from the request
    scopes: str = "openid email profile"
    label: str = "Sign in with Microsoft"

    @property
    def metadata_url(self) -> str:
        """Where the provider publishes its endpoints and keys."""
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


@dataclass(frozen=True)
class WebSettings:
    """Everything the web app needs beyond the core settings."""

    secret: str = field(repr=False)
    max_upload_bytes: int = 64 << 20
    session_hours: int = 12
    login_window_seconds: int = 15 * 60
    login_max_per_account: int = 5
    login_max_per_ip: int = 20
    rejects_shown: int = 20
    oidc: OidcSettings | None = None
    #: How long a page waits for a slow figure (savings, funnel, verdicts) being
    #: recomputed before it shows the last one, marked as recomputing. None: always
    #: wait (the default when built in code, e.g. by tests); 100 ms from the environment.
    render_wait_ms: int | None = None

    @property
    def render_wait(self) -> float | None:
        """``render_wait_ms`` in seconds (None: wait as long as it takes)."""
        return None if self.render_wait_ms is None else self.render_wait_ms / 1000

    @classmethod
    def from_env(cls, data_dir: Path, env: Mapping[str, str] | None = None) -> WebSettings:
        """Read ``RECLAIM_WEB_*`` variables; create the secret file when none is set."""
        env = os.environ if env is None else env
        return cls(
            secret=_secret(env, data_dir),
            max_upload_bytes=_int(env, "RECLAIM_WEB_MAX_UPLOAD_MB", 64, low=1) << 20,
            session_hours=_int(env, "RECLAIM_WEB_SESSION_HOURS", 12, low=1),
            login_window_seconds=_int(env, "RECLAIM_WEB_LOGIN_WINDOW_MINUTES", 15, low=1) * 60,
            login_max_per_account=_int(env, "RECLAIM_WEB_LOGIN_MAX_PER_ACCOUNT", 5, low=1),
            login_max_per_ip=_int(env, "RECLAIM_WEB_LOGIN_MAX_PER_IP", 20, low=1),
            oidc=_oidc(env),
            render_wait_ms=_int(env, "RECLAIM_WEB_RENDER_WAIT_MS", 100, low=0),
        )


def _int(env: Mapping[str, str], name: str, default: int, *, low: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise WebSettingsError(f"{name} must be a whole number (got {raw!r})") from None
    if value < low:
        raise WebSettingsError(f"{name} must be at least {low} (got {value})")
    return value


def _secret(env: Mapping[str, str], data_dir: Path) -> str:
    value = env.get(SECRET_ENV)
    if value:
        if len(value) < MIN_SECRET_LENGTH:
            # The length is reported, never the value.
            raise WebSettingsError(
                f"{SECRET_ENV} must be at least {MIN_SECRET_LENGTH} characters "
                f"(it has {len(value)})"
            )
        return value
    return secret_from_file(data_dir / SECRET_FILE)


def secret_from_file(path: Path) -> str:
    """Read the secret file, creating it (0600, random 48 bytes) if it does not exist."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting at once cannot both write a different secret.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_text(encoding="utf-8").strip()
        if len(value) < MIN_SECRET_LENGTH:
            raise WebSettingsError(
                f"{path} must hold at least {MIN_SECRET_LENGTH} characters; delete it to "
                "have a new one generated (everyone will have to sign in again)"
            ) from None
        return value
    value = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    return value


def _oidc(env: Mapping[str, str]) -> OidcSettings | None:
    issuer = env.get("RECLAIM_OIDC_ISSUER")
    tenant = env.get("RECLAIM_OIDC_TENANT_ID")
    if not issuer and tenant:
        authority = env.get("RECLAIM_OIDC_AUTHORITY_HOST", "https://login.microsoftonline.com")
        issuer = f"{authority.rstrip('/')}/{tenant}/v2.0"
    if not issuer:
        return None
    client_id = env.get("RECLAIM_OIDC_CLIENT_ID")
    client_secret = _client_secret(env)
    if not client_id or not client_secret:
        raise WebSettingsError(
            "OpenID Connect needs RECLAIM_OIDC_CLIENT_ID and RECLAIM_OIDC_CLIENT_SECRET "
            "(or RECLAIM_OIDC_CLIENT_SECRET_FILE) when RECLAIM_OIDC_ISSUER or "
            "RECLAIM_OIDC_TENANT_ID is set"
        )
    if not issuer.startswith("https://") and not _loopback(issuer):
        raise WebSettingsError("RECLAIM_OIDC_ISSUER must be an https:// URL")
    return OidcSettings(
        issuer=issuer,
        client_id=client_id,
        client_secret=client_secret,
        redirect_url=env.get("RECLAIM_OIDC_REDIRECT_URL") or None,
        scopes=env.get("RECLAIM_OIDC_SCOPES", "openid email profile"),
        label=env.get("RECLAIM_OIDC_LABEL", "Sign in with Microsoft"),
    )


def _client_secret(env: Mapping[str, str]) -> str | None:
    path = env.get("RECLAIM_OIDC_CLIENT_SECRET_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise WebSettingsError(
                f"RECLAIM_OIDC_CLIENT_SECRET_FILE cannot be read: {exc.strerror}"
            ) from None
    return env.get("RECLAIM_OIDC_CLIENT_SECRET") or None


def _loopback(url: str) -> bool:
    # Plain http is allowed only for a provider on this machine (tests, development).
    return url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))
