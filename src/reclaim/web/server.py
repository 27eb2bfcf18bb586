"""Running the web app under uvicorn: ``reclaim serve`` and the demo's serve mode.

:func:`listen` binds the socket first, so a caller can print a working address (even
for port 0, "any free port") before the server loop starts: connections made in
between wait in the socket's backlog. :func:`run_server` serves until SIGINT/SIGTERM
and returns normally, after the optional background worker has stopped.
"""

from __future__ import annotations

import gc
import logging
import signal
import socket
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from reclaim.web.background import BackgroundWorker
from reclaim.web.security import RedactQueryFilter


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def freeze_startup_heap() -> None:
    """Keep everything built so far (modules, the app and its routes, SQLAlchemy's
    tables, templates) out of the cyclic garbage collector's full collections.

    Why: a full collection walks every tracked object, and the loaded app is about
    160,000 of them: 130-300 ms per full collection on the 2-core machine, every
    few seconds under load, and every request of the process waits meanwhile (they
    were the response page's slowest answers, ``bench/respond.py``). None of it is
    ever garbage, so it moves to the permanent generation once (``gc.freeze()``);
    what requests build is collected as before.
    """
    gc.collect()
    gc.freeze()


def run_server(
    app: FastAPI,
    sock: socket.socket,
    *,
    forwarded_allow_ips: str | None = None,
    background: BackgroundWorker | None = None,
    on_stopped: Callable[[bool], None] | None = None,
    log_level: str = "info",
) -> None:
    """Serve ``app`` on ``sock`` until SIGINT or SIGTERM (Ctrl-C), then return.

    ``background`` (the scheduler and a worker) is started first and stopped after the
    server, after the case in hand; ``on_stopped`` hears whether it stopped in time.
    """
    host, port = sock.getsockname()[:2]
    server_config = uvicorn.Config(
        app,
        host=host,
        port=port,
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,
        log_level=log_level,
    )
    # uvicorn set its loggers up just now (in Config): add the filter after that.
    logging.getLogger("uvicorn.access").addFilter(RedactQueryFilter())

    def on_signal(_signum: int, _frame: object) -> None:
        # uvicorn captures SIGINT/SIGTERM while it serves and, after its graceful
        # shutdown, raises them again to the handler that was there before: this one,
        # so that the worker is stopped below instead of the process being killed
        # (and Ctrl-C ends the command without a KeyboardInterrupt traceback).
        if background is not None:
            background.worker.stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    freeze_startup_heap()
    if background is not None:
        background.start()
    try:
        uvicorn.Server(server_config).run(sockets=[sock])
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sock.close()
        if background is not None:
            stopped = background.stop()
            if on_stopped is not None:
                on_stopped(stopped)
