"""Composing the ask: one person, one or several products, every channel's rendering.

All wording lives in Jinja2 templates (``campaigns/templates``). ``_phrases.j2`` holds
the sentences every channel shares, as macros; they are rendered first, as plain text,
into the view (``item.why``, ``view.subject``, ...). One template per rendering then
lays them out: ``subject.txt.j2``, ``email.txt.j2``, ``email.html.j2``,
``teams_card.json.j2``, ``slack_blocks.json.j2``, ``slack_text.txt.j2``. A policy's
``template_dir`` shadows any of them file by file; an override may include or extend
a default as ``default/NAME``.

HTML is autoescaped; the Teams and Slack templates escape for their own markup
(``|md``, ``|mrkdwn``) and emit JSON through ``|tojson``; their output is parsed and
shape-checked here, so a broken override fails at :func:`check_templates` or compose
time, not at the peer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from reclaim.campaigns.model import (
    AskItem,
    AskMessage,
    AskRequest,
    AskStage,
    EmailContent,
    Recipient,
    ResponseLinks,
    SlackContent,
)
from reclaim.campaigns.templating import (
    SLACK_MAX_BLOCKS,
    TemplateProblem,
    call_phrase,
    environment,
    render_json,
    render_template,
)
from reclaim.campaigns.tokens import TokenKeys, sign

__all__ = [
    "ItemView",
    "LinkSigner",
    "MessageView",
    "OrgDetails",
    "Rendered",
    "TemplateProblem",
    "build_view",
    "check_templates",
    "compose_ask",
    "render",
]


@dataclass(frozen=True)
class LinkSigner:
    """Makes the signed response-page links: ``{base_url}/respond/{token}?choice=…``."""

    base_url: str
    keys: TokenKeys

    def links_for(self, item: AskItem, *, upn: str, now: dt.datetime) -> ResponseLinks:
        """Links for ``item``, valid until its ``respond_by``."""
        if item.respond_by <= now:
            raise ValueError(f"case {item.case_id}: respond_by is not after now; nothing to ask")
        token = sign(
            keys=self.keys,
            case_id=item.case_id,
            upn=upn,
            purpose="answer",
            expires_at=item.respond_by,
            now=now,
        )
        page = f"{self.base_url.rstrip('/')}/respond/{token}"
        return ResponseLinks(
            page=page, keep=f"{page}?choice=keep", release=f"{page}?choice=release"
        )


@dataclass(frozen=True)
class OrgDetails:
    """Who is asking, for the footer: the organization's name and a support contact."""

    name: str | None = None
    support_contact: str | None = None


@dataclass(frozen=True)
class ItemView:
    """One item as the templates see it (times already in the person's zone)."""

    case_id: str
    policy: str
    product: str
    reason: str | None
    last_used: dt.date | None
    respond_by: dt.datetime
    stage: str
    reminder: int
    on_no_response: str
    restore_window_days: int | None
    links: ResponseLinks
    # Sentences from ``_phrases.j2``, rendered as plain text before layout (see _phrase).
    why: str = ""
    last_used_text: str = ""
    answer_by: str = ""
    if_silent: str = ""
    if_released: str = ""
    stage_label: str = ""


@dataclass(frozen=True)
class MessageView:
    """The whole message as the templates see it."""

    recipient: Recipient
    items: tuple[ItemView, ...]
    stage: str  # "final" if any item is, "reminder" if all are, else "ask"
    first_asked_on: dt.date | None
    org_name: str | None
    support_contact: str | None
    subject: str = ""
    heading: str = ""
    greeting: str = ""
    lead: str = ""
    footer: str = ""

    @property
    def count(self) -> int:
        """How many products the message asks about."""
        return len(self.items)


#: The macros of ``_phrases.j2`` that each item and the whole message get.
ITEM_PHRASES = ("why", "last_used_text", "answer_by", "if_silent", "if_released", "stage_label")
MESSAGE_PHRASES = ("subject", "heading", "greeting", "lead", "footer")


def with_phrases(view: MessageView, *, template_dir: Path | str | None = None) -> MessageView:
    """``view`` with every sentence of ``_phrases.j2`` filled in (as plain text)."""
    env = environment(template_dir)
    items = []
    for item in view.items:
        said = {n: call_phrase(env, n, item) for n in ITEM_PHRASES}
        items.append(replace(item, **said))  # type: ignore[arg-type]  # all str fields
    view = replace(view, items=tuple(items))
    said = {n: call_phrase(env, n, view) for n in MESSAGE_PHRASES}
    return replace(view, **said)  # type: ignore[arg-type]  # all str fields


# ----- composing ----------------------------------------------------------------------


def _overall_stage(items: tuple[AskItem, ...]) -> str:
    stages = {i.stage for i in items}
    if AskStage.FINAL in stages:
        return AskStage.FINAL.value
    if stages == {AskStage.REMINDER}:
        return AskStage.REMINDER.value
    return AskStage.ASK.value


def build_view(
    request: AskRequest,
    *,
    links: Mapping[str, ResponseLinks],
    zone: ZoneInfo,
    org: OrgDetails,
) -> MessageView:
    """The template context for ``request`` (items most urgent first)."""
    ordered = sorted(request.items, key=lambda i: (i.respond_by, i.product.lower(), i.case_id))
    items = tuple(
        ItemView(
            case_id=i.case_id,
            policy=i.policy,
            product=i.product,
            reason=i.reason,
            last_used=i.last_used,
            respond_by=i.respond_by.astimezone(zone),
            stage=i.stage.value,
            reminder=i.reminder,
            on_no_response=i.on_no_response,
            restore_window_days=i.restore_window_days,
            links=links[i.case_id],
        )
        for i in ordered
    )
    asked = [i.first_asked_on for i in request.items if i.first_asked_on]
    return MessageView(
        recipient=request.recipient,
        items=items,
        stage=_overall_stage(request.items),
        first_asked_on=min(asked) if asked else None,
        org_name=org.name,
        support_contact=org.support_contact,
    )


class Rendered(NamedTuple):
    """Every channel's rendering of one message, checked."""

    email: EmailContent
    teams_card: dict[str, Any]
    slack: SlackContent


def render(view: MessageView, *, template_dir: Path | str | None = None) -> Rendered:
    """Render every template for ``view`` (phrases first), and check what came out."""
    env = environment(template_dir)
    view = with_phrases(view, template_dir=template_dir)
    subject = " ".join(render_template(env, "subject.txt.j2", view).split())  # one line, no CR/LF
    if not subject:
        raise TemplateProblem("subject.txt.j2", "rendered an empty subject")
    card = render_json(env, "teams_card.json.j2", view)
    if not (isinstance(card, dict) and card.get("type") == "AdaptiveCard"):
        raise TemplateProblem(
            "teams_card.json.j2", 'must render an object with "type": "AdaptiveCard"'
        )
    if not isinstance(card.get("body"), list):
        raise TemplateProblem("teams_card.json.j2", 'must have a "body" list')
    blocks = render_json(env, "slack_blocks.json.j2", view)
    if not (isinstance(blocks, list) and all(isinstance(b, dict) and "type" in b for b in blocks)):
        raise TemplateProblem("slack_blocks.json.j2", "must render a list of blocks (objects)")
    if len(blocks) > SLACK_MAX_BLOCKS:
        raise TemplateProblem(
            "slack_blocks.json.j2",
            f"rendered {len(blocks)} blocks; Slack takes at most {SLACK_MAX_BLOCKS} "
            "(send fewer items per message)",
        )
    slack_text = render_template(env, "slack_text.txt.j2", view).strip()
    if not slack_text:
        raise TemplateProblem("slack_text.txt.j2", "rendered empty text")
    text = render_template(env, "email.txt.j2", view).strip() + "\n"
    html = render_template(env, "email.html.j2", view)
    return Rendered(
        email=EmailContent(subject=subject, text=text, html=html),
        teams_card=card,
        slack=SlackContent(text=slack_text, blocks=tuple(blocks)),
    )


def compose_ask(
    request: AskRequest,
    *,
    links: LinkSigner,
    now: dt.datetime,
    default_timezone: str = "UTC",
    template_dir: Path | str | None = None,
    org: OrgDetails | None = None,
) -> AskMessage:
    """Sign the links and render every channel's message for ``request`` at ``now``.

    Times are shown in the person's zone (``Recipient.timezone``, else
    ``default_timezone``). Raises TemplateProblem for a broken template and ValueError
    for an item whose ``respond_by`` has passed.
    """
    upn = request.recipient.upn
    signed = {i.case_id: links.links_for(i, upn=upn, now=now) for i in request.items}
    zone = ZoneInfo(request.recipient.timezone or default_timezone)
    view = build_view(request, links=signed, zone=zone, org=org or OrgDetails())
    out = render(view, template_dir=template_dir)
    return AskMessage(
        request=request,
        links=signed,
        email=out.email,
        teams_card=out.teams_card,
        slack=out.slack,
        composed_at=now,
    )


def check_templates(template_dir: Path | str | None = None) -> list[str]:
    """Render sample messages (one product; three products in every stage) with the
    templates in ``template_dir``; returns the problems found (empty: all good).

    For ``reclaim config check``: a broken override is reported before a campaign runs.
    """
    at = dt.datetime(2030, 1, 7, 9, 0, tzinfo=dt.UTC)  # fixed: the check reads no clock
    signer = LinkSigner("https://reclaim.invalid", TokenKeys.of(b"\0" * 32))
    person = Recipient("sample.person@example.invalid", display_name="Sample Person")
    base = AskItem("sample-1", "Sample", "Sample App", at + dt.timedelta(days=10))
    samples = [
        AskRequest(recipient=person, items=(base,)),
        AskRequest(
            recipient=person,
            items=(
                replace(base, last_used=dt.date(2029, 10, 1), restore_window_days=30),
                replace(
                    base,
                    case_id="sample-2",
                    product="Other App",
                    stage=AskStage.REMINDER,
                    reminder=1,
                    first_asked_on=dt.date(2030, 1, 2),
                    on_no_response="release",
                ),
                replace(base, case_id="sample-3", product="Third App", stage=AskStage.FINAL),
            ),
        ),
    ]
    problems: list[str] = []
    for request in samples:
        try:
            compose_ask(request, links=signer, now=at, template_dir=template_dir)
        except TemplateProblem as exc:
            if str(exc) not in problems:
                problems.append(str(exc))
    return problems
