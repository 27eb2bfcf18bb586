"""Active Directory's LDAP quirks, named, with where each one is documented.

Nothing here talks to a server: these are the constants and small parsers the LDAP
connector uses to turn AD's answers into decisions.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import IntEnum
from xml.sax.saxutils import unescape


class ResultCode(IntEnum):
    """LDAP result codes AD returns (RFC 4511 §4.1.9).

    https://learn.microsoft.com/en-us/troubleshoot/windows-server/active-directory/ldap-error-codes
    """

    SUCCESS = 0
    OPERATIONS_ERROR = 1
    PROTOCOL_ERROR = 2
    TIME_LIMIT_EXCEEDED = 3
    SIZE_LIMIT_EXCEEDED = 4
    STRONGER_AUTH_REQUIRED = 8
    REFERRAL = 10
    ADMIN_LIMIT_EXCEEDED = 11
    CONFIDENTIALITY_REQUIRED = 13
    NO_SUCH_ATTRIBUTE = 16
    CONSTRAINT_VIOLATION = 19
    ATTRIBUTE_OR_VALUE_EXISTS = 20
    NO_SUCH_OBJECT = 32
    INVALID_DN_SYNTAX = 34
    INVALID_CREDENTIALS = 49
    INSUFFICIENT_ACCESS_RIGHTS = 50
    BUSY = 51
    UNAVAILABLE = 52
    UNWILLING_TO_PERFORM = 53
    ENTRY_ALREADY_EXISTS = 68
    OTHER = 80


# Worth retrying later, possibly on another DC.
TRANSIENT_CODES = frozenset(
    {
        ResultCode.OPERATIONS_ERROR,
        ResultCode.TIME_LIMIT_EXCEEDED,
        ResultCode.ADMIN_LIMIT_EXCEEDED,
        ResultCode.BUSY,
        ResultCode.UNAVAILABLE,
    }
)

# The server wants an encrypted transport: AD's "LDAP server signing requirements"
# / channel binding policy, Samba's `ldap server require strong auth = yes`
# ("BindSimple: Transport encryption required.").
# https://learn.microsoft.com/en-us/troubleshoot/windows-server/active-directory/enable-ldap-signing-in-windows-server
TLS_REQUIRED_CODES = frozenset(
    {ResultCode.STRONGER_AUTH_REQUIRED, ResultCode.CONFIDENTIALITY_REQUIRED}
)

# Removing a value that is not there: AD answers 53 with extended error 0x561
# (ERROR_MEMBER_NOT_IN_GROUP), or 16 for a group with no members at all; Samba 53.
# The message text differs by server, so the connector re-reads membership instead
# of trusting either code.
REMOVE_NOT_PRESENT_CODES = frozenset(
    {ResultCode.UNWILLING_TO_PERFORM, ResultCode.NO_SUCH_ATTRIBUTE}
)

# Adding a value that is already there: AD and Samba answer 68; RFC 4511 servers 20.
ADD_ALREADY_PRESENT_CODES = frozenset(
    {ResultCode.ENTRY_ALREADY_EXISTS, ResultCode.ATTRIBUTE_OR_VALUE_EXISTS}
)

# LDAP_MATCHING_RULE_IN_CHAIN: walks nested group membership on the server.
# https://learn.microsoft.com/en-us/windows/win32/adsi/search-filter-syntax
MATCHING_RULE_IN_CHAIN = "1.2.840.113556.1.4.1941"

# AD returns at most MaxValRange (default 1,500) values of a multi-valued attribute per
# read; larger ones come back as `member;range=0-1499` and must be read in windows.
# https://learn.microsoft.com/en-us/windows/win32/adsi/attribute-range-retrieval
# https://learn.microsoft.com/en-us/troubleshoot/windows-server/active-directory/view-set-ldap-policy-using-ntdsutil
DEFAULT_MAX_VAL_RANGE = 1500

# userAccountControl flags.
# https://learn.microsoft.com/en-us/troubleshoot/windows-server/active-directory/useraccountcontrol-manipulate-account-properties
UAC_ACCOUNTDISABLE = 0x0002

# Sub-codes AD puts in the message of a failed bind ("... data 52e, v4563").
# https://learn.microsoft.com/en-us/troubleshoot/windows-server/active-directory/ldap-error-codes
BIND_SUBCODES = {
    "525": "user not found",
    "52e": "invalid credentials",
    "530": "not permitted to log on at this time",
    "531": "not permitted to log on at this workstation",
    "532": "password expired",
    "533": "account disabled",
    "701": "account expired",
    "773": "user must reset password",
    "775": "account locked out",
}

# AD's filter for "a person's user account" (excludes computers, which are users too).
USER_FILTER = "(&(objectCategory=person)(objectClass=user))"

_BIND_SUBCODE = re.compile(r"\bdata ([0-9a-f]{3,4})\b", re.IGNORECASE)
_SID = re.compile(r"^S-1-\d+(-\d+)+$")


def bind_failure_reason(message: str) -> str | None:
    """The human reason hidden in AD's bind error message, if it carries one."""
    match = _BIND_SUBCODE.search(message or "")
    return BIND_SUBCODES.get(match.group(1).lower()) if match else None


def is_sid(text: str) -> bool:
    """True for a string SID such as ``S-1-5-21-...-1103`` (safe to put in ``<SID=...>``)."""
    return bool(_SID.match(text))


@dataclass(frozen=True)
class ValueMetadata:
    """One entry of AD's ``msDS-ReplValueMetaData`` for the ``member`` attribute."""

    dn: str
    created: dt.datetime | None
    deleted: bool


def _xml_field(xml: str, tag: str) -> str | None:
    match = re.search(rf"<{tag}>(.*?)</{tag}>", xml, re.DOTALL)
    return unescape(match.group(1), {"&quot;": '"', "&apos;": "'"}) if match else None


def _ad_time(text: str | None) -> dt.datetime | None:
    # AD writes 1601-01-01T00:00:00Z for "never": values added before linked-value
    # replication was enabled have no creation time.
    if not text or text.startswith("1601-"):
        return None
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def parse_value_metadata(value: str) -> ValueMetadata | None:
    """Parse one ``<DS_REPL_VALUE_META_DATA>`` XML value (attribute ``member`` only).

    Regular expressions rather than an XML parser: the fields are flat, AD escapes
    the DN, and no entity expansion can be smuggled through a regex.
    https://learn.microsoft.com/en-us/windows/win32/adschema/a-msds-replvaluemetadata
    https://learn.microsoft.com/en-us/windows/win32/api/ntdsapi/ns-ntdsapi-ds_repl_value_meta_data
    """
    if (_xml_field(value, "pszAttributeName") or "").lower() != "member":
        return None
    dn = _xml_field(value, "pszObjectDn")
    if not dn:
        return None
    return ValueMetadata(
        dn=dn,
        created=_ad_time(_xml_field(value, "ftimeCreated")),
        deleted=_ad_time(_xml_field(value, "ftimeDeleted")) is not None,
    )


def parse_range(attribute: str) -> tuple[str, int, int | None] | None:
    """Split ``member;range=0-1499`` into ``("member", 0, 1499)``; ``*`` gives None.

    Returns None when the name carries no range option.
    """
    name, sep, window = attribute.partition(";range=")
    if not sep:
        return None
    low, _, high = window.partition("-")
    return name, int(low), None if high == "*" else int(high)
