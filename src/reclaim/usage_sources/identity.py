"""Who an endpoint means: Windows SIDs and account names, turned into UPNs.

Endpoint telemetry never names people by UPN. Windows gives a SID: ``S-1-5-21-…`` for
accounts of an on-prem AD domain (Entra's ``onPremisesSecurityIdentifier``, AD's
``objectSid``), ``S-1-12-1-…`` for Entra ID accounts on Entra-joined devices (the SID
encodes the account's object id, see :func:`entra_object_id_of_sid`). macOS gives a
short account name. A :class:`Directory` answers both; the store-backed one reads the
``identities`` table (``store/identities.py``).
"""

from __future__ import annotations

import re
import struct
import uuid
from typing import Protocol

# S-1-<authority>-<sub authorities…>; case-insensitive, as Windows compares them.
SID_PATTERN = re.compile(r"^S-1-\d+(-\d+)+$", re.IGNORECASE)
# Accounts that are people: domain or local accounts (S-1-5-21-…) and Entra ID
# accounts (S-1-12-1-…). Everything else (S-1-5-18 SYSTEM, S-1-5-19/20 services,
# S-1-5-80-… service SIDs, S-1-5-90-… window manager) is the machine itself.
PERSON_SID_PREFIXES = ("S-1-5-21-", "S-1-12-1-")


class SidDirectory(Protocol):
    """Maps a Windows SID to the user's UPN."""

    def user_for_sid(self, sid: str) -> str | None:
        """The UPN of the account with this SID, or None when unknown."""
        ...  # pragma: no cover


class AccountDirectory(Protocol):
    """Maps an account name (``alice``, ``CORP\\alice``) to the user's UPN."""

    def user_for_account(self, name: str) -> str | None:
        """The UPN of the account with this name, or None when unknown."""
        ...  # pragma: no cover


class Directory(SidDirectory, AccountDirectory, Protocol):
    """Both look-ups: what the osquery source needs."""


def normalize_sid(text: str) -> str | None:
    """The SID in its canonical (upper-case) spelling, or None if it is not a SID."""
    sid = text.strip().upper()
    return sid if SID_PATTERN.match(sid) else None


def is_person_sid(sid: str) -> bool:
    """Whether this SID can belong to a person (not SYSTEM or a service account)."""
    return sid.upper().startswith(PERSON_SID_PREFIXES)


def entra_object_id_of_sid(sid: str) -> str | None:
    """The Entra object id an ``S-1-12-1-a-b-c-d`` SID stands for, else None.

    Windows builds these SIDs from the object id's 16 bytes read as four little-endian
    32-bit numbers (the GUID's Windows byte order), so the mapping needs no directory.
    """
    parts = sid.upper().split("-")
    if parts[:4] != ["S", "1", "12", "1"] or len(parts) != 8:
        return None
    try:
        raw = struct.pack("<4I", *(int(p) for p in parts[4:]))
    except (ValueError, struct.error):
        return None
    return str(uuid.UUID(bytes_le=raw))


def sid_of_entra_object_id(object_id: str) -> str:
    """The ``S-1-12-1-…`` SID Windows gives an Entra ID account (inverse of the above)."""
    numbers = struct.unpack("<4I", uuid.UUID(object_id).bytes_le)
    return "S-1-12-1-" + "-".join(str(n) for n in numbers)


def account_name(text: str) -> str:
    """An account name without its domain, lower-cased: ``CORP\\Alice`` → ``alice``."""
    return text.strip().rsplit("\\", 1)[-1].lower()


class MappingDirectory:
    """A :class:`Directory` over plain dicts: for tests and one-off scripts."""

    def __init__(
        self, sids: dict[str, str] | None = None, accounts: dict[str, str] | None = None
    ) -> None:
        self.sids = {k.upper(): v for k, v in (sids or {}).items()}
        self.accounts = {account_name(k): v for k, v in (accounts or {}).items()}

    def user_for_sid(self, sid: str) -> str | None:
        """See :class:`SidDirectory`."""
        return self.sids.get(sid.upper())

    def user_for_account(self, name: str) -> str | None:
        """See :class:`AccountDirectory`."""
        return self.accounts.get(account_name(name))
