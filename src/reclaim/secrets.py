"""Secret references: ``env:NAME`` or ``file:/path``, resolved only when used.

The config file never holds a secret itself. A reference is resolved at the moment
a connector needs the value, and the value is never part of a repr, a log line or an
error message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer


class SecretError(ValueError):
    """A secret reference could not be resolved. The message names the reference, not a value."""


@dataclass(frozen=True)
class SecretRef:
    """A pointer to a secret held in the environment or in a file."""

    scheme: str  # "env" or "file"
    target: str  # the variable name or the file path

    @classmethod
    def parse(cls, text: str) -> SecretRef:
        """Read ``env:NAME`` or ``file:/path``; anything else is refused."""
        scheme, sep, target = text.partition(":")
        if not sep or scheme not in ("env", "file") or not target.strip():
            raise SecretError(
                "must be a secret reference 'env:VARIABLE' or 'file:/path/to/file'; "
                "secrets are never written in the config file itself"
            )
        return cls(scheme=scheme, target=target.strip())

    def resolve(self) -> str:
        """Return the secret's value, or raise SecretError saying what is missing."""
        if self.scheme == "env":
            value = os.environ.get(self.target)
            if value is None or value == "":
                raise SecretError(f"environment variable {self.target} is not set")
            return value
        path = Path(self.target)
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretError(f"secret file {path} cannot be read ({exc.strerror})") from None
        if not value:
            raise SecretError(f"secret file {path} is empty")
        return value

    def __str__(self) -> str:
        return f"{self.scheme}:{self.target}"

    def __repr__(self) -> str:
        return f"SecretRef({self.scheme}:{self.target})"


def _as_secret_ref(value: Any) -> SecretRef:
    """Pydantic input for a :data:`Secret` field: a reference string, never a value."""
    if isinstance(value, SecretRef):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a secret reference string such as 'env:NAME'")
    try:
        return SecretRef.parse(value)
    except SecretError as exc:
        raise ValueError(str(exc)) from None


# A settings field that holds a secret reference (``env:NAME`` / ``file:/path``),
# validated when the config is read and written back as the reference, never the value.
Secret = Annotated[SecretRef, BeforeValidator(_as_secret_ref), PlainSerializer(str)]
