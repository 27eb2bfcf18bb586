"""Protected people and groups: never removed, whatever a policy says.

``safety.protected_users`` (UPNs, or shell-style patterns such as
``*-admin@corp.example`` and ``breakglass*``) and ``safety.protected_groups`` (an Entra
object id, an AD DN, SID or sAMAccountName, or a display name) are a brake *outside*
the policies: a policy that by mistake targets an administrators' group, or forgets to
exclude the emergency-access account, still cannot take anything from them. The cycle
opens no case for a protected person (and closes an open one), a policy aimed at a
protected group is held like an unwritable group, and the write gate refuses any
removal that slipped past (planned before the protection was configured). Restores
are never refused.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from reclaim.domain.names import user_key
from reclaim.domain.policy import Policy


def protected_user_reason(patterns: tuple[str, ...], user: str) -> str | None:
    """Why ``user`` is protected (the pattern that matched), or None."""
    key = user_key(user)
    for pattern in patterns:
        if fnmatchcase(key, user_key(pattern)):
            return f"{user} is protected (safety.protected_users: {pattern!r})"
    return None


def protected_group_reason(protected: tuple[str, ...], policy: Policy) -> str | None:
    """Why the policy's group is protected, or None. Ids compare case-insensitively."""
    g = policy.group
    names = {v.casefold() for v in (g.entra_id, g.ad_dn, g.ad_sid, g.ad_sam, g.name) if v}
    for entry in protected:
        if entry.casefold() in names:
            return (
                f"policy {policy.name!r} targets a protected group "
                f"(safety.protected_groups: {entry!r}); its removals are refused"
            )
    return None
