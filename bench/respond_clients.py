"""The load generator of ``bench/respond.py``: clients answering response links over
plain HTTP/1.1, and the percentiles of what they measured."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

FORM = re.compile(r'<form method="post" action="([^"]+)"')


class Conn:
    """One keep-alive HTTP/1.1 connection, written by hand on asyncio streams.

    httpx cost more CPU per request than the server did (~8 ms a response), and the
    clients share the same 2 cores as the server: this keeps the load generator's own
    cost low, so the figures are the server's. Enough HTTP for these two requests:
    Content-Length bodies only (uvicorn sends those for these pages).
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, str]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if body:
            head += (
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\n"
            )
        self.writer.write(head.encode() + b"\r\n" + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        text = (await self.reader.readexactly(length)).decode()
        return status, text

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def run_clients(
    base: str, links: list[tuple[int, str]], clients: int, rate: float | None
) -> dict[str, Any]:
    """Answer every link with ``clients`` concurrent clients.

    ``rate`` None: each client takes the next link as soon as it is done (a closed
    loop: as fast as the server goes). Else response n is due at ``n / rate`` seconds
    (an open loop: people arrive at that rate whatever the server does), and its
    latency counts from when it was due, so time spent waiting for a free client is
    counted too.
    """
    queue: asyncio.Queue[tuple[int, int, str, str]] = asyncio.Queue()
    for n, (case_id, path) in enumerate(links):
        queue.put_nowait((n, case_id, path, "keep" if n % 2 else "release"))
    pairs: list[float] = []
    gets: list[float] = []
    posts: list[float] = []
    errors: list[str] = []
    host, _, port = base.removeprefix("http://").partition(":")

    async def one() -> None:
        conn = Conn(host, int(port))
        try:
            while not queue.empty():
                n, case_id, path, choice = queue.get_nowait()
                t0 = time.perf_counter()
                if rate is not None:
                    due = start + n / rate
                    if due > t0:
                        await asyncio.sleep(due - t0)
                    t0 = due
                try:
                    status, page = await conn.request("GET", path)
                    t1 = time.perf_counter()
                    form = FORM.search(page)
                    if status != 200 or form is None:
                        errors.append(f"case {case_id}: GET {status}")
                        continue
                    body = f"choice={choice}".encode()
                    status, done = await conn.request("POST", form.group(1), body)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    errors.append(f"case {case_id}: {type(exc).__name__}")
                    conn.close()
                    conn = Conn(host, int(port))
                    continue
                t2 = time.perf_counter()
                if status != 200 or "your answer is recorded" not in done:
                    errors.append(f"case {case_id}: POST {status}")
                gets.append(t1 - t0)
                posts.append(t2 - t1)
                pairs.append(t2 - t0)
        finally:
            conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(clients)))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "pairs": pairs, "gets": gets, "posts": posts, "errors": errors}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000
