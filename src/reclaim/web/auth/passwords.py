"""Password hashing with argon2id (argon2-cffi's defaults, RFC 9106's second choice)."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 1024  # hashing cost grows with length: refuse absurd inputs early


class WeakPassword(ValueError):
    """The password does not meet the minimum rules."""


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id, 64 MiB, 3 passes: ~50 ms on a laptop core


def check_strength(password: str) -> None:
    """Refuse passwords too short to resist guessing, or too long to hash cheaply."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"the password must have at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    """An argon2id hash (PHC string: algorithm, parameters and salt included)."""
    check_strength(password)
    return _hasher().hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored``; with no stored hash, spend the same time.

    Verifying against a dummy hash when the account does not exist (or has no
    password) keeps the response time from telling which e-mail addresses exist.
    """
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher().verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True when the hash was made with weaker parameters than today's defaults."""
    return _hasher().check_needs_rehash(stored)


@cache
def _dummy_hash() -> str:
    return _hasher().hash("reclaim: no such account, or no password set")
