"""The Jinja2 environment behind campaign messages: loaders, sandbox, escaping filters.

Defaults live in ``campaigns/templates``; a ``template_dir`` shadows them file by file,
and an override can still reach a default as ``default/NAME`` (to extend it). Templates
run in Jinja's sandbox (admins write them, but a template should not be able to reach
Python internals) with undefined names as errors, so a typo fails loudly.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

DEFAULT_TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE_NAMES = (
    "subject.txt.j2",
    "email.txt.j2",
    "email.html.j2",
    "teams_card.json.j2",
    "slack_blocks.json.j2",
    "slack_text.txt.j2",
)
SLACK_MAX_BLOCKS = 50  # Block Kit: "up to 50 blocks in each message"
# English names, whatever the server's locale (strftime's %B would follow it).
_MONTH_NAMES = (
    *("January", "February", "March", "April", "May", "June"),
    *("July", "August", "September", "October", "November", "December"),
)
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class TemplateProblem(Exception):
    """A template could not be rendered, or rendered something the channel cannot take."""

    def __init__(self, template: str, problem: str) -> None:
        super().__init__(f"{template}: {problem}")
        self.template = template
        self.problem = problem


_TEAMS_MD = re.compile(r"([\\`*_~\[\]<>])")


def teams_markdown(value: object) -> str:
    """Escape text for a Teams TextBlock (markdown): no bold, links or HTML-ish tags."""
    return _TEAMS_MD.sub(r"\\\1", str(value))


def slack_mrkdwn(value: object) -> str:
    """Escape text for Slack mrkdwn: the three characters Slack requires (&, <, >)."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def human_date(value: dt.date) -> str:
    """``2 March 2026`` (English, independent of the server's locale)."""
    return f"{value.day} {_MONTH_NAMES[value.month - 1]} {value.year}"


def human_when(value: dt.datetime) -> str:
    """``Tuesday 10 March 2026, 09:00 CET``: a deadline, in the zone it is given in."""
    day = f"{_DAY_NAMES[value.weekday()]} {human_date(value.date())}"
    return f"{day}, {value:%H:%M} {value.tzname() or ''}".rstrip()


def _autoescape(name: str | None) -> bool:
    return name is not None and name.endswith((".html.j2", ".html"))


@functools.lru_cache(maxsize=64)
def _environment(template_dir: str | None) -> SandboxedEnvironment:
    defaults = jinja2.FileSystemLoader(str(DEFAULT_TEMPLATES))
    loaders: list[jinja2.BaseLoader] = []
    if template_dir is not None:
        loaders.append(jinja2.FileSystemLoader(template_dir))
    loaders += [defaults, jinja2.PrefixLoader({"default": defaults})]
    env = SandboxedEnvironment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(md=teams_markdown, mrkdwn=slack_mrkdwn, date=human_date, when=human_when)
    return env


def environment(template_dir: Path | str | None = None) -> SandboxedEnvironment:
    """The template environment for ``template_dir`` (shadowing the defaults); cached."""
    if template_dir is None:
        return _environment(None)
    path = Path(template_dir).expanduser()
    if not path.is_dir():
        raise TemplateProblem(str(path), "template_dir is not a directory")
    return _environment(str(path.resolve()))


def render_template(env: SandboxedEnvironment, name: str, view: object) -> str:
    """Render ``name`` with ``view``; any Jinja error becomes a TemplateProblem."""
    try:
        return env.get_template(name).render(view=view)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(exc.filename or name, f"line {exc.lineno}: {exc.message}") from exc
    except jinja2.TemplateError as exc:
        raise TemplateProblem(name, f"{type(exc).__name__}: {exc}") from exc


def render_json(env: SandboxedEnvironment, name: str, view: object) -> Any:
    """Render ``name`` and parse it as JSON (a Teams card or Slack blocks)."""
    text = render_template(env, name, view)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TemplateProblem(name, f"did not render valid JSON ({exc})") from None


def call_phrase(env: SandboxedEnvironment, name: str, arg: object) -> str:
    """Call one macro of ``_phrases.j2`` from Python, as plain one-line text.

    Why not call the macros from each template: a macro defined in a non-escaping
    template and called from an autoescaped one returns its text *marked safe*, so an
    HTML template would print a product name unescaped. Rendered here once, the
    sentences are ordinary strings that every layout escapes for its own markup.
    """
    try:
        macro = getattr(env.get_template("_phrases.j2").module, name)
        return " ".join(str(macro(arg)).split())
    except jinja2.TemplateSyntaxError as exc:
        where = exc.filename or "_phrases.j2"
        raise TemplateProblem(where, f"line {exc.lineno}: {exc.message}") from exc
    except jinja2.TemplateError as exc:
        raise TemplateProblem("_phrases.j2", f"{name}: {type(exc).__name__}: {exc}") from exc
    except AttributeError:
        raise TemplateProblem("_phrases.j2", f"the macro {name!r} is missing") from None
