"""Roles and what each may do.

``viewer`` < ``operator`` < ``admin`` form a ladder: each role may do everything the
ones below it may. ``ingest`` stands apart: it may upload usage and nothing else, so
a token left on a telemetry host cannot read who is about to lose a license.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A principal's role."""

    VIEWER = "viewer"  # read everything
    OPERATOR = "operator"  # approve plans, answer and restore cases, pause and resume
    ADMIN = "admin"  # tokens and accounts, and everything an operator may do
    INGEST = "ingest"  # usage upload only


_LADDER = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}

#: Roles a person signing in to the UI may have (``ingest`` is for machines).
ACCOUNT_ROLES = (Role.VIEWER, Role.OPERATOR, Role.ADMIN)

#: Who may upload usage: the ingest role, and admins (who may do anything).
INGEST_ROLES = frozenset({Role.INGEST, Role.ADMIN})


def allows(have: Role, need: Role) -> bool:
    """Whether a principal with role ``have`` may do what needs ``need``."""
    if need is Role.INGEST:
        return have in INGEST_ROLES
    if have is Role.INGEST:
        return False
    return _LADDER[have] >= _LADDER[need]


def parse_role(text: str) -> Role:
    """The role named ``text``; ValueError listing the known ones otherwise."""
    try:
        return Role(text.strip().lower())
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise ValueError(f"unknown role {text!r} (known: {known})") from None
