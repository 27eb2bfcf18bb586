"""Running Reclaim unattended: the scheduler (one cycle per cron tick, whichever worker
gets there first) and the worker loop (claims due cases and executes their steps)."""

#: Cases a worker runs at once by default (``reclaim worker --concurrency``): enough to
#: keep Graph's write ceiling (20/s) busy at 50-200 ms per request, and below the
#: database pool's 15 connections.
DEFAULT_CONCURRENCY = 8

#: Due removals of one policy a worker takes together (``reclaim worker --group-size``,
#: services/group_removal.py): a Graph ``$batch`` holds at most 20 requests.
GROUP_SIZE = 20
