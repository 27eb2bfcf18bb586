"""Composing the ask: wording, batching into one message, escaping, template overrides."""

from __future__ import annotations

import datetime as dt

import pytest
from markupsafe import escape

from reclaim.campaigns.messages import TemplateProblem, check_templates, compose_ask
from reclaim.campaigns.model import AskRequest, AskStage, Recipient
from reclaim.campaigns.templating import (
    DEFAULT_TEMPLATES,
    human_when,
    slack_mrkdwn,
    teams_markdown,
)
from reclaim.campaigns.tokens import peek_case_id, verify
from tests.unit.campaigns.factories import (
    ALICE,
    KEYS,
    LINK,
    NOW,
    SIGNER,
    ask,
    item,
    request,
    three_items,
)

XSS = "<script>alert('x')</script> & [click](https://evil.example) *bold*"


def card_texts(card) -> list[str]:
    """Every text a person sees on the card (TextBlocks and facts), in order."""
    out: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "TextBlock":
                out.append(node["text"])
            for fact in node.get("facts", []):
                out.extend([fact["title"], fact["value"]])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return out


def open_urls(card) -> list[str]:
    urls: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "Action.OpenUrl":
                urls.append(node["url"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return urls


def test_single_product_email_says_why_what_and_until_when():
    message = ask()
    assert message.email.subject == "Do you still need Microsoft Visio?"
    text = message.email.text
    assert "Hello Alice Martin," in text
    assert "You have not used Microsoft Visio since 1 December 2025." in text
    assert "Last used: 1 December 2025" in text
    # The deadline is shown in the person's own zone (Paris, winter time).
    assert "Answer by: Thursday 12 March 2026, 10:00 CET" in text
    assert "you keep it." in text
    assert "the seat is freed" in text and "within 30 days" in text
    assert "Contoso" in text and "it-help@corp.example" in text


def test_links_are_signed_for_this_case_and_person_with_both_choices():
    message = ask()
    found = LINK.findall(message.email.text)
    assert sorted(choice for _, choice in found) == ["keep", "release"]
    token = found[0][0]
    assert peek_case_id(token) == "case-visio"
    claims = verify(token, keys=KEYS, upn=ALICE.upn, purpose="answer", now=NOW)
    assert claims.expires_at == item().respond_by
    assert message.links["case-visio"].keep.endswith("?choice=keep")


def test_several_products_are_batched_into_one_message_with_own_buttons():
    message = ask(*three_items())
    assert message.email.subject == "Final notice: do you still need these 3 licenses?"
    text = message.email.text
    # Most urgent first: the final notice, then the reminder, then the new ask.
    order = [text.index(p) for p in ("Adobe Acrobat Pro", "== Miro", "Microsoft Visio ==")]
    assert order == sorted(order)
    assert "(final notice)" in text and "(reminder)" in text
    assert "Last used: never" in text
    assert "We have no record of you using Miro." in text
    assert "the license will be released" in text  # Miro's default on silence
    tokens_by_case = {peek_case_id(t) for t, _ in LINK.findall(text)}
    assert tokens_by_case == {"case-visio", "case-miro", "case-acrobat"}
    assert len(LINK.findall(message.email.html)) == 6
    assert len(open_urls(message.teams_card)) == 6
    buttons = [e for b in message.slack.blocks if b["type"] == "actions" for e in b["elements"]]
    assert [b["text"]["text"] for b in buttons] == ["Keep it", "Release it"] * 3
    assert len({b["action_id"] for b in buttons}) == 6  # Slack needs them unique


@pytest.mark.parametrize(
    ("stages", "subject"),
    [
        ((AskStage.REMINDER,), "Reminder: do you still need Microsoft Visio?"),
        ((AskStage.FINAL,), "Final notice: do you still need Microsoft Visio?"),
        ((AskStage.ASK, AskStage.REMINDER), "Do you still need these 2 licenses?"),
        ((AskStage.REMINDER, AskStage.REMINDER), "Reminder: do you still need these 2 licenses?"),
    ],
)
def test_subject_follows_the_stage(stages, subject):
    items = [item(f"c{i}", stage=s, reminder=1) for i, s in enumerate(stages)]
    assert ask(*items).email.subject == subject


def test_reminder_says_when_we_first_asked():
    message = ask(item(stage=AskStage.REMINDER, reminder=1, first_asked_on=dt.date(2026, 2, 26)))
    assert "We asked you on 26 February 2026 and have not heard back yet." in message.email.text


def test_html_escapes_names_and_reasons():
    message = ask(item(product=XSS, reason=XSS), recipient=Recipient("x@corp.example", None, XSS))
    body = message.email.html
    assert "<script>" not in body
    assert str(escape(XSS)) in body  # the product name, escaped, in the heading
    assert f"Hello {escape(XSS)}," in body  # the display name too
    # Subject stays one line, whatever the product name holds.
    assert "\n" not in message.email.subject


def test_card_and_slack_text_neutralise_markup():
    message = ask(item(product=XSS, reason=XSS))
    for text in card_texts(message.teams_card):
        assert "<script>" not in text
        assert "[click](" not in text  # no clickable injected link
    # mrkdwn fields are escaped (plain_text fields, like the header, are shown literally).
    mrkdwn = [message.slack.text]
    for block in message.slack.blocks:
        texts = [block.get("text") or {}, *block.get("elements", [])]
        mrkdwn += [t["text"] for t in texts if t.get("type") == "mrkdwn"]
    assert len(mrkdwn) > 3
    assert not any("<script>" in t for t in mrkdwn)
    assert any("&lt;script&gt;" in t for t in mrkdwn)


def test_teams_card_is_adaptive_card_1_4_with_open_url_buttons():
    card = ask().teams_card
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    actions = [
        a
        for block in card["body"]
        for sub in block.get("items", [])
        if sub["type"] == "ActionSet"
        for a in sub["actions"]
    ]
    assert [(a["type"], a["title"]) for a in actions] == [
        ("Action.OpenUrl", "Keep it"),
        ("Action.OpenUrl", "Release it"),
    ]
    assert actions[0]["url"].endswith("?choice=keep")


def test_slack_blocks_shape():
    message = ask()
    blocks = message.slack.blocks
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["type"] == "plain_text"
    sections = [b for b in blocks if b["type"] == "section"]
    assert all(s["text"]["type"] == "mrkdwn" for s in sections)
    actions = [b for b in blocks if b["type"] == "actions"]
    assert len(actions) == 1
    assert [e["style"] for e in actions[0]["elements"]] == ["primary", "danger"]
    assert all(
        e["url"].startswith("https://reclaim.example/respond/") for e in actions[0]["elements"]
    )
    assert message.slack.text.startswith("Do you still need Microsoft Visio?")
    assert "|Keep it>" in message.slack.text


def test_template_dir_shadows_one_file_and_keeps_the_rest(tmp_path):
    (tmp_path / "subject.txt.j2").write_text("[IT] {{ view.subject }}\n")
    message = ask(template_dir=tmp_path)
    assert message.email.subject == "[IT] Do you still need Microsoft Visio?"
    assert "Last used: 1 December 2025" in message.email.text  # default body kept


def test_phrases_override_changes_every_channel(tmp_path):
    default = (DEFAULT_TEMPLATES / "_phrases.j2").read_text()
    replaced = default.replace(
        "You have not used {{ item.product }} since {{ item.last_used|date }}.",
        "Seit {{ item.last_used|date }} nicht benutzt: {{ item.product }}.",
    )
    (tmp_path / "_phrases.j2").write_text(replaced)
    message = ask(item(product="Visio <b>"), template_dir=tmp_path)
    assert "Seit 1 December 2025 nicht benutzt: Visio <b>." in message.email.text
    assert "Seit 1 December 2025 nicht benutzt: Visio &lt;b&gt;." in message.email.html
    assert "Seit 1 December 2025 nicht benutzt: Visio \\<b\\>." in card_texts(message.teams_card)


def test_override_can_extend_a_default_template(tmp_path):
    (tmp_path / "email.txt.j2").write_text(
        '{% include "default/email.txt.j2" %}\n-- \nContoso IT, building 4\n'
    )
    assert ask(template_dir=tmp_path).email.text.rstrip().endswith("Contoso IT, building 4")


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("teams_card.json.j2", '{"type": "AdaptiveCard", "body": [,]}', "valid JSON"),
        ("teams_card.json.j2", '{"type": "MessageCard"}', "AdaptiveCard"),
        ("slack_blocks.json.j2", '{"type": "section"}', "list of blocks"),
        ("email.txt.j2", "{{ view.no_such_field }}", "no_such_field"),
        ("email.html.j2", "{% if %}", "line 1"),
        ("subject.txt.j2", "   \n", "empty subject"),
        ("email.txt.j2", "{{ view.__class__.__mro__ }}", "unsafe"),
    ],
)
def test_broken_overrides_are_reported(tmp_path, name, content, problem):
    (tmp_path / name).write_text(content)
    with pytest.raises(TemplateProblem, match=problem):
        ask(template_dir=tmp_path)
    problems = check_templates(tmp_path)
    assert problems and problem.lower() in " ".join(problems).lower()


def test_default_templates_pass_the_check():
    assert check_templates() == []


def test_missing_template_dir_is_reported(tmp_path):
    with pytest.raises(TemplateProblem, match="not a directory"):
        ask(template_dir=tmp_path / "nope")


def test_slack_block_limit_is_enforced():
    items = [item(f"c{i}", product=f"App {i}") for i in range(13)]  # 2 + 4 * 13 > 50
    with pytest.raises(TemplateProblem, match="at most 50"):
        ask(*items)


def test_an_item_past_its_deadline_cannot_be_asked():
    with pytest.raises(ValueError, match="respond_by is not after now"):
        compose_ask(request(item(respond_by=NOW)), links=SIGNER, now=NOW)


def test_request_validation():
    with pytest.raises(ValueError, match="at least one"):
        AskRequest(recipient=ALICE, items=())
    with pytest.raises(ValueError, match="twice"):
        AskRequest(recipient=ALICE, items=(item(), item()))
    with pytest.raises(ValueError, match="timezone-aware"):
        item(respond_by=dt.datetime(2026, 3, 12, 9, 0))


def test_idempotency_key_is_stable_and_stage_specific():
    first = request(*three_items())
    again = request(*reversed(three_items()))
    assert first.key() == again.key()
    reminded = request(item(stage=AskStage.REMINDER, reminder=1))
    assert reminded.key() != request(item()).key()
    assert request(item(), idempotency_key="given").key() == "given"
    assert first.lead_policy == "Acrobat Pro"  # the most urgent item's policy


def test_escaping_filters():
    assert teams_markdown("a*b_[c](d)<e>\\") == "a\\*b\\_\\[c\\](d)\\<e\\>\\\\"
    assert slack_mrkdwn("<a|b> & c") == "&lt;a|b&gt; &amp; c"
    assert human_when(dt.datetime(2026, 7, 1, 8, 5, tzinfo=dt.UTC)) == (
        "Wednesday 1 July 2026, 08:05 UTC"
    )
