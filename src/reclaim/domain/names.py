"""How people and applications are named inside Reclaim.

Users are keyed by UPN, case-insensitively (Entra ID treats UPNs that way). Apps are
keyed case-insensitively too: ``VISIO.EXE`` and ``visio.exe`` are the same program on
Windows, and SaaS names arrive in whatever case a report uses.
"""

from __future__ import annotations


def user_key(upn: str) -> str:
    """The key for a user: the UPN, trimmed and lower-cased."""
    return upn.strip().lower()


def app_key(name: str) -> str:
    """The key for an application name or alias: trimmed and lower-cased."""
    return name.strip().lower()
