"""Running Reclaim unattended: the scheduler (one cycle per cron tick, whichever worker
gets there first) and the worker loop (claims due cases and executes their steps)."""
