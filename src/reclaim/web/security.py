"""Security headers on every response, and the client address used for audit and limits."""

from __future__ import annotations

import logging
import re

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# 'self' only: templates pull no script, style, font or image from anywhere else, and
# no inline script runs, so an injected <script> is refused by the browser too.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

_STATIC = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate CSP 2
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


class SecurityHeadersMiddleware:
    """Add the headers above; ``no-store`` for anything but static files; HSTS on https."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        https = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _STATIC.items():
                    headers.setdefault(name, value)
                if not path.startswith("/static/"):
                    # Pages and API answers carry per-user data: no shared caches.
                    headers.setdefault("Cache-Control", "no-store")
                if https:
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000")
            await send(message)

        await self.app(scope, receive, with_headers)


def client_ip(conn: HTTPConnection) -> str:
    """The peer address as the server saw it.

    Behind a reverse proxy, run ``reclaim serve --forwarded-allow-ips PROXY`` so that
    uvicorn replaces it with the proxy's ``X-Forwarded-For``; the header is never
    trusted from anyone else, or a client could pick its own rate-limit bucket.
    """
    return conn.client.host if conn.client else "unknown"


class RedactQueryFilter(logging.Filter):
    """Blank out credentials that arrive in query strings before uvicorn logs a request.

    The OpenID Connect callback carries a one-time authorization ``code`` (and its
    ``state``) in its URL, and a one-time sign-in link its ``token``; access logs must
    not keep them.
    """

    _SECRET_PARAM = re.compile(r"\b(code|state|session_state|token)=[^&\s\"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self._SECRET_PARAM.sub(r"\1=[redacted]", a) if isinstance(a, str) else a
                for a in record.args
            )
        return True
