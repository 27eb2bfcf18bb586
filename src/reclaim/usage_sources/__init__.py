"""Where usage comes from: files (CSV, NDJSON), and later osquery logs and Microsoft Graph.

Every source produces the same thing: a frame of validated events (``events.py``)
that ``rollup.py`` turns into daily roll-ups.
"""
