"""AD quirks parsed without a server (kept beside the AD tests they explain)."""

from __future__ import annotations

import datetime as dt

import pytest

from reclaim.connectors import ad_vendor as ad
from reclaim.connectors.ldap import LdapSettings

# The shape AD returns for msDS-ReplValueMetaData (one value per linked value).
_META = """<DS_REPL_VALUE_META_DATA>
\t<pszAttributeName>member</pszAttributeName>
\t<pszObjectDn>CN=O'Brien\\, Pat &amp; Co,OU=Staff,DC=corp,DC=example,DC=test</pszObjectDn>
\t<cbData>0</cbData>
\t<pbData></pbData>
\t<ftimeDeleted>{deleted}</ftimeDeleted>
\t<ftimeCreated>{created}</ftimeCreated>
\t<dwVersion>1</dwVersion>
\t<ftimeLastOriginatingChange>2024-03-05T10:11:12Z</ftimeLastOriginatingChange>
\t<uuidLastOriginatingDsaInvocationID>6f2f8f4e-0000-0000-0000-000000000000</uuidLastOriginatingDsaInvocationID>
\t<usnOriginatingChange>12345</usnOriginatingChange>
\t<usnLocalChange>12345</usnLocalChange>
\t<pszLastOriginatingDsaDN></pszLastOriginatingDsaDN>
</DS_REPL_VALUE_META_DATA>
"""
NEVER = "1601-01-01T00:00:00Z"


def test_value_metadata_gives_the_time_a_member_was_added() -> None:
    meta = ad.parse_value_metadata(_META.format(deleted=NEVER, created="2024-03-05T10:11:12Z"))

    assert meta is not None
    assert meta.dn == "CN=O'Brien\\, Pat & Co,OU=Staff,DC=corp,DC=example,DC=test"
    assert meta.created == dt.datetime(2024, 3, 5, 10, 11, 12, tzinfo=dt.UTC)
    assert not meta.deleted


def test_value_metadata_of_a_removed_or_legacy_value() -> None:
    removed = ad.parse_value_metadata(_META.format(deleted="2024-04-01T00:00:00Z", created=NEVER))

    assert removed is not None
    assert removed.deleted
    assert removed.created is None  # added before linked-value replication: unknown
    other = _META.replace(">member<", ">manager<").format(deleted=NEVER, created=NEVER)
    assert ad.parse_value_metadata(other) is None


def test_range_option_is_split() -> None:
    assert ad.parse_range("member;range=0-1499") == ("member", 0, 1499)
    assert ad.parse_range("member;range=1500-*") == ("member", 1500, None)
    assert ad.parse_range("member") is None


def test_bind_sub_codes_name_the_reason() -> None:
    message = (
        "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 775, v4563"
    )
    assert ad.bind_failure_reason(message) == "account locked out"
    assert ad.bind_failure_reason("no data here") is None


def test_settings_refuse_unsafe_or_contradictory_choices() -> None:
    base = {"base_dn": "DC=x", "bind_user": "svc@x", "password": "Sekr1t-Value"}
    with pytest.raises(ValueError, match="allow_insecure"):
        LdapSettings(hosts=("dc1",), use_ssl=False, **base)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not both"):
        LdapSettings(hosts=("dc1",), start_tls=True, **base)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="allow_insecure"):
        LdapSettings(hosts=("dc1",), allow_insecure_writes=True, **base)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no URLs"):
        LdapSettings(hosts=("ldaps://dc1",), **base)  # type: ignore[arg-type]
    settings = LdapSettings(hosts=["dc1", "dc2"], **base)  # type: ignore[arg-type]
    assert settings.hosts == ("dc1", "dc2")
    assert settings.effective_port == 636
    assert "Sekr1t-Value" not in repr(settings)
