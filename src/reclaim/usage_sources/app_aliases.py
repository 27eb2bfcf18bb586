"""Executable paths and bundle ids → the app names policies count, through their aliases.

Endpoint telemetry names programs by path (``C:\\Program Files\\…\\VISIO.EXE``), by
bare executable name (Prefetch) or by macOS bundle id. A policy's ``apps`` list holds
plain names (``VISIO.EXE``, ``com.microsoft.Excel``), which already match by key, and
may hold glob patterns (``*\\Office16\\VISIO.EXE``, ``/Applications/Tableau*.app``)
that match whole paths. The rules, in order:

1. A value matching a pattern alias (case-insensitive; ``\\`` and ``/`` are the same
   separator; ``*`` spans separators) is recorded under that policy's first plain
   alias, or under the pattern itself when the policy lists only patterns. Either way
   it is a name the policy looks up.
2. Anything else keeps its own name: the executable's file name (``VISIO.EXE``), or the
   bundle id for a macOS app. History is kept under that name even when no policy asks
   for it yet, so a policy added later still sees it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence

_GLOB = re.compile(r"[*?\[]")
_SEPARATORS = re.compile(r"[\\/]")
# A Prefetch file is named after its executable plus a hash of its path: VISIO.EXE-1A2B3C4D.pf
_PREFETCH_FILE = re.compile(r"^(?P<exe>.+)-[0-9A-F]{8}\.pf$", re.IGNORECASE)


def is_pattern(alias: str) -> bool:
    """Whether a policy alias is a glob pattern rather than a plain name."""
    return bool(_GLOB.search(alias))


def _fold(text: str) -> str:
    # One separator and one case, so C:\X\Y.EXE and c:/x/y.exe are the same path.
    return _SEPARATORS.sub("/", text.strip()).lower()


def executable_name(value: str) -> str:
    """The last path component: ``C:\\Apps\\VISIO.EXE`` → ``VISIO.EXE`` (and a Prefetch
    file ``VISIO.EXE-1A2B3C4D.pf`` → ``VISIO.EXE``)."""
    last = _SEPARATORS.split(value.strip().rstrip("\\/"))[-1]
    prefetch = _PREFETCH_FILE.match(last)
    return prefetch.group("exe") if prefetch else last


class AppMatcher:
    """Maps telemetry values to app names (see the module docstring); results are cached."""

    def __init__(self, policy_apps: Iterable[Sequence[str]]) -> None:
        # (compiled pattern, name to record) in policy order: the first match wins.
        self.patterns: list[tuple[re.Pattern[str], str]] = []
        for aliases in policy_apps:
            plain = [a for a in aliases if not is_pattern(a)]
            for alias in aliases:
                if is_pattern(alias):
                    regex = re.compile(fnmatch.translate(_fold(alias)), re.DOTALL)
                    self.patterns.append((regex, plain[0] if plain else alias))
        self._cache: dict[tuple[str, ...], str | None] = {}

    def name(self, *values: str | None) -> str | None:
        """The app name for a row's values (e.g. bundle id, path); None if all are blank.

        Every value is tried against the patterns first; without a match the first
        non-blank value names the app (a path by its file name).
        """
        key = tuple(v or "" for v in values)
        if key in self._cache:
            return self._cache[key]
        found = None
        present = [v.strip() for v in key if v.strip()]
        for value in present:
            # A bare name (Prefetch) is matched as if it sat in some folder, so that
            # "*\VISIO.EXE" matches "VISIO.EXE".
            folded = _fold(value if _SEPARATORS.search(value) else "/" + value)
            found = next((n for rx, n in self.patterns if rx.match(folded)), None)
            if found:
                break
        if found is None and present:
            found = executable_name(present[0])
        if len(self._cache) > 200_000:  # a fleet's distinct paths; bound it anyway
            self._cache.clear()
        self._cache[key] = found
        return found
