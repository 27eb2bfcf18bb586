"""``web.server.freeze_startup_heap``: the loaded app is kept out of full collections.

Run in a child process, so that this test run's own heap stays as it is.
"""

from __future__ import annotations

import json
import subprocess
import sys

_CHILD = """
import gc, json
from reclaim.web.app import create_app  # the app's modules, as reclaim serve loads them
from reclaim.web.server import freeze_startup_heap
before = len(gc.get_objects())
freeze_startup_heap()
garbage = [[i] for i in range(1000)]  # built after: still collected as usual
print(json.dumps({"before": before, "walked": len(gc.get_objects()),
                  "frozen": gc.get_freeze_count()}))
"""


def test_full_collections_no_longer_walk_what_was_loaded_at_startup() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True, timeout=60
    )
    seen = json.loads(out.stdout)
    assert seen["before"] > 50_000  # the loaded app: what a full collection used to walk
    assert seen["frozen"] >= 0.9 * seen["before"]
    assert 1000 <= seen["walked"] < 0.1 * seen["before"]
