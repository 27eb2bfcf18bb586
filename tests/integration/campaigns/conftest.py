"""Real peers on loopback for the campaign channels.

- ``smtp_server``: a real SMTP server (aiosmtpd) on 127.0.0.1 that records what it
  receives and can refuse recipients, require STARTTLS, speak implicit TLS, and check
  a login, with a throwaway CA and certificate;
- ``http_peer``: a small HTTP server (stdlib, in a thread) standing in for a Teams
  Workflows webhook and for the Slack Web API, answering from a script and recording
  every request (method, path, headers, body).
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from reclaim.testing.graph.tls import TlsFiles, make_tls_files

SMTP_USER = "reclaim-svc"
SMTP_PASSWORD = "fake-smtp-password-for-tests"  # obviously fake fixture value


def free_port() -> int:
    """A TCP port nothing listens on right now (aiosmtpd needs the number up front)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ----- SMTP ----------------------------------------------------------------------------


@dataclass
class Received:
    """One message as the server got it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: Any
    tls: bool
    user: bytes | None  # the login name, when the client authenticated


@dataclass
class Recorder:
    """aiosmtpd handler: records messages, refuses listed recipients, and takes
    ``delay`` seconds to accept each one (a slow mail server)."""

    refuse: dict[str, str] = field(default_factory=dict)
    messages: list[Received] = field(default_factory=list)
    delay: float = 0.0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            return self.refuse[address.lower()]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.delay)
        self.messages.append(
            Received(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                data=bytes(envelope.original_content or envelope.content),
                peer=session.peer,
                tls=session.ssl is not None  # STARTTLS
                or server.transport.get_extra_info("ssl_object") is not None,  # implicit
                user=getattr(session.auth_data, "login", None) if session.authenticated else None,
            )
        )
        return "250 Message accepted for delivery"


def _check_login(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login == SMTP_USER.encode() and auth_data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


@dataclass
class SmtpPeer:
    """A running server: where it is, what it received, its CA file when it has TLS."""

    host: str
    port: int
    recorder: Recorder
    tls: TlsFiles | None


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory) -> TlsFiles:
    """A throwaway CA and a certificate for 127.0.0.1 (made once per test session)."""
    return make_tls_files(Path(tmp_path_factory.mktemp("smtp-tls")))


@pytest.fixture
def smtp_server(tls_files) -> Iterator[Callable[..., SmtpPeer]]:
    """Start a server: ``smtp_server(starttls=False, implicit_tls=False, auth=False)``."""
    started: list[Controller] = []

    def start(*, starttls: bool = False, implicit_tls: bool = False, auth: bool = False):
        recorder = Recorder()
        kwargs: dict[str, Any] = {}
        context = None
        if starttls or implicit_tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(tls_files.cert_file, tls_files.key_file)
        if starttls:
            kwargs.update(tls_context=context, require_starttls=True)
        if auth:
            kwargs.update(authenticator=_check_login, auth_required=True)
            kwargs["auth_require_tls"] = starttls or implicit_tls
        port = free_port()
        controller = Controller(
            recorder,
            hostname="127.0.0.1",
            port=port,
            ssl_context=context if implicit_tls else None,
            server_hostname="mx.test.invalid",
            **kwargs,
        )
        controller.start()
        started.append(controller)
        tls = tls_files if (starttls or implicit_tls) else None
        return SmtpPeer("127.0.0.1", port, recorder, tls)

    yield start
    for controller in started:
        controller.stop()


# ----- HTTP (Teams webhook, Slack Web API) --------------------------------------------------


@dataclass
class Request:
    """One request the HTTP peer got."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode())


@dataclass
class Reply:
    """A scripted answer; ``delay`` makes the peer slow (for timeouts)."""

    status: int = 200
    body: Any = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Route = Callable[[Request], Reply]


class HttpPeer:
    """A recording HTTP server on 127.0.0.1; ``routes`` maps a path to a responder."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.routes: dict[str, Route] = {}
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length),
                )
                peer.requests.append(request)
                route = peer.routes.get(parts.path)
                reply = route(request) if route else Reply(404, "no route")
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body
                raw = (
                    json.dumps(body).encode()
                    if isinstance(body, dict | list)
                    else str(body).encode()
                )
                try:
                    self.send_response(reply.status)
                    ctype = "application/json" if isinstance(body, dict | list) else "text/plain"
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(raw)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to answer

            do_GET = do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        # A short poll interval: shutdown() waits up to one interval.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def on(self, path: str, route: Route | Reply) -> None:
        """Answer ``path`` with a fixed reply or a function of the request."""
        if isinstance(route, Reply):
            fixed = route
            self.routes[path] = lambda _request: fixed
        else:
            self.routes[path] = route

    def to(self, path: str) -> list[Request]:
        """The requests received on ``path``."""
        return [r for r in self.requests if r.path == path]


@pytest.fixture
def http_peer() -> Iterator[HttpPeer]:
    peer = HttpPeer()
    peer.thread.start()
    yield peer
    peer.server.shutdown()
    peer.server.server_close()
