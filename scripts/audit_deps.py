"""Dependency audit: Reclaim's installed dependencies against PyPI's advisory data.

    .venv/bin/python scripts/audit_deps.py            what pyproject.toml declares
                                                      (with [test]) and all they need
    .venv/bin/python scripts/audit_deps.py --all      every distribution in the venv
    .venv/bin/python scripts/audit_deps.py --strict   unverifiable ones fail too

Why not pip-audit itself: its PyPI service asks ``/pypi/<name>/<version>/json`` for
each dependency, and the package registry these machines reach answers that URL with
404 for every project (pip-audit then skips each one as "not found on PyPI"); its OSV
service needs api.osv.dev, which is not a package registry and is not reachable. The
registry does serve ``/pypi/<name>/json``, whose ``vulnerabilities`` are PyPI's
advisories (the PyPA advisory database, the same data pip-audit's PyPI service reads)
for the project's *latest* release. So, for each dependency:

- installed version == latest release: its advisories are exactly known; any that is
  not withdrawn is a **known vulnerability** (exit 1);
- an older release: this endpoint cannot tell, so it is listed as **unverifiable**
  with the latest version (exit 1 only with ``--strict``);
- a project the registry does not know (404): unverifiable too.

The registry not answering at all is exit 2, so the caller can tell "not audited"
from "audited, clean". Nothing is installed or changed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

DEFAULT_API = "https://pypi.org/pypi"
PROJECT = "reclaim"
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
EXTRAS = ("test",)


class Unreachable(Exception):
    """The registry did not answer (DNS, refused, timeout, 5xx)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One dependency's audit result."""

    name: str
    version: str
    latest: str | None = None
    vulns: tuple[dict[str, object], ...] = ()
    unverifiable: str | None = None  # why it could not be audited


@dataclass
class Report:
    """All findings, and the exit code they make."""

    findings: list[Finding] = field(default_factory=list)

    @property
    def vulnerable(self) -> list[Finding]:
        return [f for f in self.findings if f.vulns]

    @property
    def unverifiable(self) -> list[Finding]:
        return [f for f in self.findings if f.unverifiable]

    def exit_code(self, *, strict: bool) -> int:
        return 1 if self.vulnerable or (strict and self.unverifiable) else 0


def closure(pyproject: Path = PYPROJECT, extras: Iterable[str] = EXTRAS) -> dict[str, str]:
    """canonical name → installed version, for what ``pyproject.toml`` declares
    (dependencies and ``extras``) and everything those need, as installed (markers
    evaluated for this interpreter). The project itself is left out."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    roots = list(project.get("dependencies", []))
    for extra in extras:
        roots += project.get("optional-dependencies", {}).get(extra, [])
    found: dict[str, str] = {}
    todo = [Requirement(line) for line in roots]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate(_env()):
            continue
        key = (canonicalize_name(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            raise SystemExit(f"{req.name} is required but not installed: install first") from None
        found[key[0]] = dist.version
        for line in dist.requires or []:
            sub = Requirement(line)
            marker = sub.marker
            if marker is not None and not any(
                marker.evaluate({**_env(), "extra": e}) for e in (req.extras or {""})
            ):
                continue
            sub.marker = None  # decided here, with the extras that asked for it
            todo.append(sub)
    return found


def everything() -> dict[str, str]:
    """canonical name → version of every distribution installed, the project left out."""
    out: dict[str, str] = {}
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name != PROJECT:
            out[name] = dist.version
    return out


def fetch(api: str, name: str, *, timeout: float = 20.0) -> dict[str, object] | None:
    """``{api}/{name}/json``; None when the registry does not know the project."""
    url = f"{api.rstrip('/')}/{name}/json"
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body: dict[str, object] = json.load(response)
            return body
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise Unreachable(f"{url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unreachable(f"{url}: {reason}") from None


def audit_one(api: str, name: str, version: str) -> Finding:
    """The finding for one installed distribution (see the module docstring)."""
    body = fetch(api, name)
    if body is None:
        return Finding(name, version, unverifiable="not known to the registry")
    info = body.get("info")
    latest = str(info.get("version")) if isinstance(info, dict) else None
    if latest is None or not _same(version, latest):
        why = f"not the latest release ({latest}): the registry has advisories for that only"
        return Finding(name, version, latest, unverifiable=why)
    raw = _list(body.get("vulnerabilities"))
    vulns = tuple(v for v in raw if isinstance(v, dict) and not v.get("withdrawn"))
    return Finding(name, version, latest, vulns=vulns)


def audit(api: str, installed: dict[str, str], *, workers: int = 8) -> Report:
    """Audit ``installed`` (name → version); raises Unreachable when the registry is."""
    names = sorted(installed)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda n: audit_one(api, n, installed[n]), names))
    return Report(results)


def render(report: Report) -> Iterator[str]:
    """Human lines: the known vulnerabilities first, then what could not be audited."""
    for f in report.vulnerable:
        for v in f.vulns:
            fixed = ", ".join(str(x) for x in _list(v.get("fixed_in"))) or "no fix yet"
            aliases = ", ".join(str(a) for a in _list(v.get("aliases")))
            extra = f" ({aliases})" if aliases else ""
            yield f"VULNERABLE {f.name} {f.version}: {v.get('id')}{extra}; fixed in: {fixed}"
            if v.get("link"):
                yield f"    {v['link']}"
    for f in report.unverifiable:
        yield f"unverifiable {f.name} {f.version}: {f.unverifiable}"
    clean = len(report.findings) - len(report.vulnerable) - len(report.unverifiable)
    yield (
        f"dependency audit: {len(report.findings)} distributions, {clean} clean, "
        f"{len(report.vulnerable)} with known vulnerabilities, "
        f"{len(report.unverifiable)} unverifiable"
    )


def _env() -> dict[str, str]:
    return {k: str(v) for k, v in default_environment().items()}


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _same(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def _parse_pins(text: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for part in filter(None, re.split(r"[,\s]+", text)):
        name, sep, version = part.partition("==")
        if not sep or not version:
            raise SystemExit(f"--packages: {part!r} is not NAME==VERSION")
        pins[canonicalize_name(name)] = version
    return pins


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json-api", default=DEFAULT_API, help="the registry's JSON API base")
    parser.add_argument("--all", action="store_true", help="every installed distribution")
    parser.add_argument("--strict", action="store_true", help="unverifiable ones fail too")
    parser.add_argument("--packages", help="audit these NAME==VERSION pins instead")
    args = parser.parse_args(argv)
    if args.packages:
        installed = _parse_pins(args.packages)
    else:
        installed = everything() if args.all else closure()
    try:
        report = audit(args.json_api, installed)
    except Unreachable as exc:
        print(f"dependency audit not run: the registry did not answer ({exc})", file=sys.stderr)
        return 2
    for line in render(report):
        print(line)
    return report.exit_code(strict=args.strict)


if __name__ == "__main__":
    sys.exit(main())
