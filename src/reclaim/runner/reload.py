"""Configuration reload without a restart, where it is safe.

A worker re-reads ``reclaim.yaml`` on SIGHUP (``systemctl reload``) and applies it
between two cases, never in the middle of one. What can change in place: the
policies (added, changed, removed — removed ones are disabled in the store, as at
start-up), ``safety`` (kill switch, dry-run, protected users and groups), ``usage``
settings, ``campaigns`` and ``timezone``. What needs a restart, because open
connections and the store itself were built from it: ``database``, ``data_dir``,
``entra`` and ``ldap``. A file that does not validate, or that changes one of those,
is refused as a whole: the worker keeps running on what it had, and says why.
"""

from __future__ import annotations

from reclaim.config import Settings

RESTART_NEEDED = ("database", "data_dir", "entra", "ldap")


def reload_refusal(current: Settings, new: Settings) -> str | None:
    """Why ``new`` cannot be applied to a running worker, or None if it can."""
    changed = [name for name in RESTART_NEEDED if getattr(current, name) != getattr(new, name)]
    if changed:
        return (
            f"{', '.join(changed)} changed: restart the worker to apply "
            f"{'it' if len(changed) == 1 else 'them'} (nothing was reloaded)"
        )
    return None
