"""``python -m reclaim.testing.graph --tenant FILE [--port N]``: run the server standalone."""

from reclaim.testing.graph.server import main

raise SystemExit(main())
