"""Another OS process holding the SQLite writers' turn (``store.engine.writers_turn``),
as a second web process answering at the same moment would."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_HOLDER = """
import sys, time
from reclaim.store.engine import make_engine, writers_turn
engine = make_engine(sys.argv[1])
with writers_turn(engine):
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""


@contextmanager
def turn_held(url: str, seconds: float) -> Iterator[None]:
    """Inside: another process holds the turn of the store at ``url`` for ``seconds``
    from just before; on the way out, waits for it to finish (and checks it did)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, url, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        yield
    finally:
        holder.wait(timeout=10 + seconds)
    assert holder.returncode == 0
