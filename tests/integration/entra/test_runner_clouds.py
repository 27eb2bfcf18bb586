"""A Graph base URL with a path prefix, as behind a gateway or a sovereign cloud's
endpoint: a small TLS reverse proxy on loopback serves the Graph server under
``/sovereign`` and the runner talks to it through ``reclaim run`` and ``reclaim restore``."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from reclaim.cli import app
from reclaim.testing.graph import GraphServer, ManualClock

from .conftest import ALICE, CLIENT_SECRET, E3_GROUP, UPNS
from .runner_world import SECRET_ENV, build_entra_world, entra_policy

PREFIX = "/sovereign"
HOP_BY_HOP = {"connection", "transfer-encoding", "keep-alive", "content-length", "host"}


class PrefixProxy:
    """Serves ``https://127.0.0.1:PORT/sovereign/...`` from the Graph server's root."""

    def __init__(self, server: GraphServer) -> None:
        assert server.tls_files is not None
        self.seen: list[str] = []
        upstream = httpx.Client(base_url=server.base_url, verify=server.ssl_context())
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                proxy.seen.append(f"{self.command} {self.path}")
                if not self.path.startswith(PREFIX + "/"):
                    self.send_error(404, "outside the prefix")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                answer = upstream.request(
                    self.command, self.path[len(PREFIX) :], headers=headers, content=body
                )
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in HOP_BY_HOP | {"content-encoding"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_DELETE = do_PATCH = _forward

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(server.tls_files.cert_file, server.tls_files.key_file)
        self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.upstream = upstream
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.httpd.server_address[1]}{PREFIX}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.upstream.close()


@pytest.fixture
def proxy(server: GraphServer) -> Iterator[PrefixProxy]:
    made = PrefixProxy(server)
    yield made
    made.close()


def test_graph_url_with_a_path_prefix(
    server: GraphServer,
    clock: ManualClock,
    proxy: PrefixProxy,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    world = build_entra_world(
        server,
        clock,
        db_url,
        tmp_path,
        entra_policy("E3", E3_GROUP, ask=False),
        graph_url=proxy.url,
        authority=server.base_url,  # sign-in has its own host, as in the national clouds
    )
    try:
        config = ["-c", str(world.config)]
        runner = CliRunner()
        ran = runner.invoke(app, ["run", "--policy", "E3", "--json", *config])
        assert ran.exit_code == 0, ran.output
        assert sorted(s["result"] for s in json.loads(ran.stdout)["steps"]) == ["removed"] * 5
        assert len(server.requests.removals()) == 5
        # The DELETEs travel in $batch requests (services/group_removal.py).
        batches = [p for p in proxy.seen if p.startswith("POST ") and p.endswith("/$batch")]
        assert batches and all(p == f"POST {PREFIX}/v1.0/$batch" for p in batches)
        restored = runner.invoke(
            app, ["restore", str(world.case(UPNS[ALICE]).id), "--json", *config]
        )
        assert restored.exit_code == 0, restored.output
        assert json.loads(restored.stdout)["result"] == "restored"
        assert f"POST {PREFIX}/v1.0/groups/{E3_GROUP}/members/$ref" in proxy.seen
        assert server.is_member(ALICE, E3_GROUP)
    finally:
        world.close()
