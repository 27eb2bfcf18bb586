"""Running the Graph test server: in-process in a background thread, or standalone.

In-process (tests)::

    with GraphServer(tenant) as server:      # TLS on a free loopback port
        server.authority                     # https://127.0.0.1:PORT/<tenant id>
        server.faults.fail_next(2, 503, retry_after=1)
        server.requests.removals()

Standalone: ``serve(Path("tenant.yaml"), 8443)`` or ``main(["--tenant", "t.yaml"])``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import uvicorn

from reclaim.testing.graph.app import create_app
from reclaim.testing.graph.clock import Clock
from reclaim.testing.graph.faults import Faults
from reclaim.testing.graph.reqlog import RequestLog
from reclaim.testing.graph.state import ServerState
from reclaim.testing.graph.tenant import Tenant
from reclaim.testing.graph.tenant_file import load_tenant
from reclaim.testing.graph.throttle import ThrottleConfig, Throttler
from reclaim.testing.graph.tls import TlsFiles, make_tls_files

log = logging.getLogger(__name__)

# Env vars through which HTTP clients pick their CA bundle; REQUESTS_CA_BUNDLE and
# CURL_CA_BUNDLE override the verify= that MSAL gives requests, SSL_CERT_FILE is httpx's.
CA_ENV_VARS = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


class GraphServer:
    """A Graph-compatible server around a :class:`Tenant`; start/stop or use ``with``."""

    def __init__(
        self,
        tenant: Tenant,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = True,
        clock: Clock | None = None,
        throttle: ThrottleConfig | None = None,
        tls_dir: Path | None = None,
    ) -> None:
        self.state = ServerState(tenant, clock=clock, throttle=throttle)
        self.host = host
        self._port = port
        self.tls_files: TlsFiles | None = make_tls_files(tls_dir) if tls else None
        # A directory we made ourselves (tls_dir not given) is removed again on stop().
        self._own_tls_dir = tls and tls_dir is None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    # ----- addresses -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (known once started, or the one asked for)."""
        return self._sock.getsockname()[1] if self._sock else self._port

    @property
    def base_url(self) -> str:
        """``https://127.0.0.1:PORT`` (``http`` when started without TLS)."""
        scheme = "https" if self.tls_files else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def graph_url(self) -> str:
        """The Graph v1.0 root, e.g. ``https://127.0.0.1:PORT/v1.0``."""
        return f"{self.base_url}/v1.0"

    @property
    def authority(self) -> str:
        """What MSAL takes as ``authority``: ``https://127.0.0.1:PORT/<tenant id>``."""
        return f"{self.base_url}/{self.tenant.tenant_id}"

    @property
    def token_url(self) -> str:
        """The tenant's token endpoint."""
        return f"{self.authority}/oauth2/v2.0/token"

    @property
    def ca_file(self) -> Path | None:
        """The CA certificate clients must trust (None without TLS)."""
        return self.tls_files.ca_file if self.tls_files else None

    def ssl_context(self) -> ssl.SSLContext:
        """A client SSL context trusting this server's CA (for httpx ``verify=``)."""
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def client_env(self) -> dict[str, str]:
        """Environment variables that make requests/httpx/curl trust this server's CA."""
        return {name: str(self.ca_file) for name in CA_ENV_VARS} if self.ca_file else {}

    # ----- state shortcuts -----------------------------------------------------------------

    @property
    def tenant(self) -> Tenant:
        """The live tenant (mutate it to change what the server answers)."""
        return self.state.tenant

    @property
    def requests(self) -> RequestLog:
        """Every request served so far."""
        return self.state.log

    @property
    def faults(self) -> Faults:
        """Fault injection knobs."""
        return self.state.faults

    @property
    def throttle(self) -> Throttler:
        """The throttler (``.configure(scale=10)``, ``.configure(enabled=False)``, ``.reset()``)."""
        return self.state.throttler

    def reset(self, tenant: Tenant | None = None) -> None:
        """Reuse a running server for another test: new tenant, empty log, no faults, ...

        Throttling goes back to the limits given at construction and issued tokens die.
        """
        self.state.reset(tenant)

    def issue_token(self, client_id: str | None = None) -> str:
        """An access token without going through the token endpoint."""
        cid = client_id or next(iter(self.tenant.clients), "test-client")
        return self.state.tokens.issue(cid, self.tenant.tenant_id, "https://graph.microsoft.com")

    def revoke_tokens(self, client_id: str | None = None) -> int:
        """Revoke issued tokens: later Graph calls get 401 InvalidAuthenticationToken."""
        return self.state.tokens.revoke(client_id)

    def disable_client(self, client_id: str) -> None:
        """Credentials revoked for good: tokens die and the token endpoint refuses the app."""
        self.tenant.clients[client_id].enabled = False
        self.revoke_tokens(client_id)

    def is_member(self, user: str, group: str, *, transitive: bool = False) -> bool:
        """Is ``user`` (id or UPN) a member of ``group`` (id or name)?"""
        return self.tenant.is_member(user, group, transitive=transitive)

    # ----- lifecycle -----------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> GraphServer:
        """Start serving in a daemon thread; returns once the socket accepts connections."""
        if self._thread is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto must say TCP: asyncio only sets TCP_NODELAY on accepted sockets whose
        # listening socket does, and without it every response waits ~40 ms (delayed ACK).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        sock.listen(128)
        self._sock = sock
        config = uvicorn.Config(
            create_app(self.state),
            http="h11",
            lifespan="off",
            log_level="warning",
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=1,
            ssl_certfile=str(self.tls_files.cert_file) if self.tls_files else None,
            ssl_keyfile=str(self.tls_files.key_file) if self.tls_files else None,
        )
        self._server = uvicorn.Server(config)
        # uvicorn only installs signal handlers on the main thread, so a thread is safe.
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name="graph-test-server",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Graph test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and release hung requests."""
        if self._server is None or self._thread is None:
            return
        self.faults.wake.set()
        # No graceful drain: a test's idle keep-alive TLS connections would hold it for seconds.
        self._server.force_exit = True
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = None
        if self._own_tls_dir and self.tls_files is not None:
            shutil.rmtree(self.tls_files.ca_file.parent, ignore_errors=True)

    def __enter__(self) -> GraphServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextmanager
def running_graph_server(tenant: Tenant | str | Path, **kwargs: object) -> Iterator[GraphServer]:
    """Context manager: a started server for a tenant object or tenant file."""
    t = tenant if isinstance(tenant, Tenant) else load_tenant(tenant)
    server = GraphServer(t, **kwargs)  # type: ignore[arg-type]
    with server:
        yield server


def serve(
    tenant_file: Path,
    port: int,
    host: str = "127.0.0.1",
    tls: bool = True,
    *,
    throttle_scale: float = 1.0,
    throttle: bool = True,
) -> None:
    """Run standalone until interrupted (``reclaim dev graph-server --tenant FILE --port N``)."""
    config = ThrottleConfig(enabled=throttle, scale=throttle_scale)
    server = GraphServer(load_tenant(tenant_file), host=host, port=port, tls=tls, throttle=config)
    if threading.current_thread() is threading.main_thread():
        # SIGTERM ends the server like Ctrl-C does, so the throwaway TLS keys get removed.
        signal.signal(signal.SIGTERM, _interrupt)
    server.start()
    print(f"Graph test server for tenant {server.tenant.tenant_id}", flush=True)
    print(f"  authority : {server.authority}", flush=True)
    print(f"  graph     : {server.graph_url}", flush=True)
    if server.ca_file:
        print(
            f"  CA file   : {server.ca_file}  (export SSL_CERT_FILE and REQUESTS_CA_BUNDLE)",
            flush=True,
        )
    print("  admin     : /_testing/requests, /_testing/faults  (Ctrl-C stops)", flush=True)
    try:
        while server._thread is not None and server._thread.is_alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: ``--tenant FILE [--port N] [--host H] [--no-tls] ...``."""
    parser = argparse.ArgumentParser(prog="graph-server", description=__doc__.splitlines()[0])
    parser.add_argument("--tenant", type=Path, required=True, help="tenant file (YAML or JSON)")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--no-tls", action="store_true", help="plain HTTP (MSAL will refuse it)")
    parser.add_argument("--throttle-scale", type=float, default=1.0, help="multiply all limits")
    parser.add_argument("--no-throttle", action="store_true", help="disable throttling")
    args = parser.parse_args(argv)
    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        parser.error("the test server only listens on loopback addresses")
    serve(
        args.tenant,
        args.port,
        args.host,
        not args.no_tls,
        throttle_scale=args.throttle_scale,
        throttle=not args.no_throttle,
    )
    return 0
