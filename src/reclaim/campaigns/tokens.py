"""Signed, single-purpose, expiring tokens for the links in campaign messages.

A token is ``r1.<payload>.<mac>``, both parts base64url without padding:

- ``payload`` is compact JSON ``{"c": case id, "p": purpose, "iat": issued, "exp":
  expires}`` (epoch seconds). The case id is the only identifier inside: it is what the
  response page needs to find the case, and it is useless without a valid MAC.
- ``mac`` is HMAC-SHA256 over a domain-separation label, the payload text **and the
  person's UPN**. The UPN is bound by the MAC but not carried in the token, so the
  link never puts an e-mail address into proxy logs, browser history or a Referer.

So the response page works in two steps: :func:`peek_case_id` (untrusted, only to load
the case), then :func:`verify` with the UPN of that case. Any edit to any part, a token
for another person, or a token from another secret fails as :class:`Tampered`.

:func:`verify` is **stateless**: it proves the link was issued by us for this case,
person and purpose and has not expired. It cannot know whether the case was already
answered: single use ("the first answer counts") is enforced by the case store, so the
caller must check the case's state before acting. Time always comes in as ``now``.

Keys come from secret references; the first key signs, every key verifies (rotation:
put the new key first, keep the old one until its links have expired).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from reclaim.domain.names import user_key
from reclaim.secrets import SecretRef

Purpose = Literal["answer", "restore"]
PURPOSES: tuple[Purpose, ...] = ("answer", "restore")

VERSION = "r1"
MIN_KEY_BYTES = 32
MAX_VALIDITY = dt.timedelta(days=400)  # a signer bug must not mint links that never expire
_LABEL = b"reclaim-response-link/1\n"
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_MAX_TOKEN_CHARS = 2048  # far above any real token; bounds the work done on junk input


class TokenError(Exception):
    """A response-link token was refused. The message is safe to log; show users less."""


class Tampered(TokenError):
    """Not a token we issued for this person (malformed, edited, other key or person)."""


class Expired(TokenError):
    """A genuine token whose validity has ended."""


class WrongPurpose(TokenError):
    """A genuine token issued for another purpose (an answer link used to restore...)."""


class WrongCase(TokenError):
    """A genuine token issued for a different case than the one it was used for."""


@dataclass(frozen=True)
class TokenKeys:
    """The HMAC keys: the first signs, all verify. Never shown in a repr."""

    keys: tuple[bytes, ...] = field(repr=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("at least one token key is needed")
        for i, key in enumerate(self.keys):
            if len(key) < MIN_KEY_BYTES:
                raise ValueError(
                    f"token key #{i + 1} is {len(key)} bytes; at least {MIN_KEY_BYTES} are "
                    "needed (make one with: python -c 'import secrets; "
                    "print(secrets.token_urlsafe(48))')"
                )

    @classmethod
    def from_secrets(cls, refs: Iterable[SecretRef]) -> TokenKeys:
        """Resolve each secret reference (the UTF-8 bytes of its value are the key)."""
        return cls(tuple(ref.resolve().encode("utf-8") for ref in refs))

    @classmethod
    def of(cls, *keys: str | bytes) -> TokenKeys:
        """Keys given directly (tests, tools)."""
        return cls(tuple(k.encode("utf-8") if isinstance(k, str) else k for k in keys))


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified token says."""

    case_id: str
    upn: str
    purpose: Purpose
    issued_at: dt.datetime
    expires_at: dt.datetime


def sign(
    *,
    keys: TokenKeys,
    case_id: str,
    upn: str,
    purpose: Purpose,
    expires_at: dt.datetime,
    now: dt.datetime,
) -> str:
    """A token for ``purpose`` on ``case_id`` by ``upn``, valid until ``expires_at``."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r} (known: {', '.join(PURPOSES)})")
    if not case_id:
        raise ValueError("case_id must not be empty")
    iat, exp = _epoch(now), _epoch(expires_at)
    if exp <= iat:
        raise ValueError("expires_at must be after now")
    if expires_at - now > MAX_VALIDITY:
        raise ValueError(f"a link may be valid for at most {MAX_VALIDITY.days} days")
    claims = {"c": case_id, "p": purpose, "iat": iat, "exp": exp}
    payload = _b64(json.dumps(claims, separators=(",", ":"), ensure_ascii=True).encode())
    return f"{VERSION}.{payload}.{_b64(_mac(keys.keys[0], payload, upn))}"


def peek_case_id(token: str) -> str:
    """The case id inside ``token``, **unverified**: use it only to load the case, then
    call :func:`verify` with that case's UPN. Raises Tampered if it cannot be read."""
    payload, _ = _split(token)
    return _claims(payload).case_id


def verify(
    token: str,
    *,
    keys: TokenKeys,
    upn: str,
    purpose: Purpose,
    now: dt.datetime,
    case_id: str | None = None,
    expired_ok: bool = False,
) -> Claims:
    """Check ``token`` for this person and purpose at ``now``; return its claims.

    ``case_id``, when given, must be the case the token was issued for (WrongCase).
    Checks run in this order: authenticity (Tampered), purpose (WrongPurpose), case
    (WrongCase), expiry (Expired). Stateless: the caller must still check that the
    case is open and unanswered (single use lives in the case store).

    ``expired_ok`` skips only the expiry check, for what a genuine link may still do
    after its answer deadline: show the recorded answer, and "I need it back" within
    the restore window (the caller checks that window against the case).
    """
    payload, mac = _split(token)
    # Every key is tried (no early exit on a match position) and compared in constant
    # time, so timing tells nothing about which key, if any, came close.
    good = False
    for key in keys.keys:
        good |= hmac.compare_digest(mac, _mac(key, payload, upn))
    if not good:
        raise Tampered("the link is not valid (it was changed, or is not for this person)")
    claims = _claims(payload)  # parsed only once authentic
    if claims.purpose != purpose:
        raise WrongPurpose(f"the link is for {claims.purpose!r}, not {purpose!r}")
    if case_id is not None and claims.case_id != case_id:
        raise WrongCase("the link was issued for a different case")
    expires_at = dt.datetime.fromtimestamp(claims.exp, dt.UTC)
    if _epoch(now) >= claims.exp and not expired_ok:
        raise Expired(f"the link expired at {expires_at.isoformat()}")
    return Claims(
        case_id=claims.case_id,
        upn=user_key(upn),
        purpose=claims.purpose,
        issued_at=dt.datetime.fromtimestamp(claims.iat, dt.UTC),
        expires_at=expires_at,
    )


# ----- internals ----------------------------------------------------------------------


def _epoch(at: dt.datetime) -> int:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"times must be timezone-aware (got naive {at.isoformat()})")
    return int(at.timestamp())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise Tampered("the link is not valid (malformed)")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise Tampered("the link is not valid (malformed)") from None
    if _b64(raw) != text:  # non-canonical trailing bits: another spelling of the same bytes
        raise Tampered("the link is not valid (malformed)")
    return raw


def _mac(key: bytes, payload: str, upn: str) -> bytes:
    message = _LABEL + payload.encode("ascii") + b"\n" + user_key(upn).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).digest()


def _split(token: str) -> tuple[str, bytes]:
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_CHARS:
        raise Tampered("the link is not valid (malformed)")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise Tampered("the link is not valid (malformed)")
    _unb64(parts[1])  # the payload must at least be well-formed base64url
    mac = _unb64(parts[2])
    if len(mac) != hashlib.sha256().digest_size:
        raise Tampered("the link is not valid (malformed)")
    return parts[1], mac


class _Payload(NamedTuple):
    case_id: str
    purpose: Purpose
    iat: int
    exp: int


def _claims(payload: str) -> _Payload:
    try:
        data = json.loads(_unb64(payload))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Tampered("the link is not valid (malformed)") from None
    if not isinstance(data, dict):
        raise Tampered("the link is not valid (malformed)")
    case_id, purpose, iat, exp = (data.get(k) for k in ("c", "p", "iat", "exp"))
    times_ok = all(isinstance(t, int) and not isinstance(t, bool) for t in (iat, exp))
    if not (isinstance(case_id, str) and case_id and purpose in PURPOSES and times_ok):
        raise Tampered("the link is not valid (malformed)")
    return _Payload(case_id, purpose, iat, exp)  # type: ignore[arg-type]
