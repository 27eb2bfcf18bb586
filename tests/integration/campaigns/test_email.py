"""The mail channel against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import logging
import socket
import threading
from email import policy
from email.parser import BytesParser

import pytest

from reclaim.campaigns.pacing import Pacer
from reclaim.campaigns.tokens import peek_case_id, verify
from reclaim.connectors.email import SmtpChannel, SmtpOptions
from reclaim.connectors.errors import Rejected, StopRun, Transient
from tests.integration.campaigns.conftest import SMTP_PASSWORD, SMTP_USER, free_port
from tests.unit.campaigns.factories import (
    ALICE,
    KEYS,
    LINK,
    NOW,
    SENDER,
    ask,
    item,
    three_items,
)
from tests.unit.campaigns.test_timing import FakeTime


def options(peer, **kw) -> SmtpOptions:
    base = {
        "host": peer.host,
        "port": peer.port,
        "security": "none",
        "sender": SENDER,
        "timeout": 5.0,
        "rate_per_second": None,
    }
    base.update(kw)
    return SmtpOptions(**base)


def parse(raw: bytes):
    return BytesParser(policy=policy.default).parsebytes(raw)


def test_ask_arrives_as_text_and_html_with_links_for_this_person(smtp_server):
    peer = smtp_server()
    message = ask(*three_items())
    with SmtpChannel(options(peer)) as channel:
        sent = channel.send(message)
    assert sent.channel == "email"

    [got] = peer.recorder.messages
    assert got.mail_from == "licenses@corp.example"
    assert got.rcpt_tos == ["Alice.Martin@corp.example"]
    mail = parse(got.data)
    assert mail["Subject"] == "Final notice: do you still need these 3 licenses?"
    assert mail["From"].addresses[0].display_name == "Contoso software team"
    assert mail["From"].addresses[0].addr_spec == "licenses@corp.example"
    assert mail["To"].addresses[0].addr_spec == "Alice.Martin@corp.example"
    assert mail["Message-ID"] == sent.message_id == f"<{message.key}.reclaim@corp.example>"
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Adobe Acrobat Pro" in text and "Adobe Acrobat Pro" in html

    # Every product has its own keep and release link, each verifying as a token for
    # that case and for Alice, and for nobody else.
    links = LINK.findall(text)
    assert sorted(c for _, c in links) == ["keep"] * 3 + ["release"] * 3
    assert {t for t, _ in LINK.findall(html.replace("&amp;", "&"))} == {t for t, _ in links}
    cases = set()
    for token, _choice in links:
        case_id = peek_case_id(token)
        claims = verify(token, keys=KEYS, upn=ALICE.upn, purpose="answer", now=NOW, case_id=case_id)
        cases.add(claims.case_id)
    assert cases == {"case-visio", "case-miro", "case-acrobat"}


def test_connection_is_reused_and_sends_are_paced(smtp_server):
    peer = smtp_server()
    t = FakeTime()
    channel = SmtpChannel(
        options(peer, rate_per_second=2), pacer=Pacer(2, clock=t.clock, sleep=t.sleep)
    )
    with channel:
        for i in range(3):
            channel.send(ask(item(f"case-{i}")))
    assert t.sleeps == [0.5, 0.5]
    assert len(peer.recorder.messages) == 3
    assert len({m.peer for m in peer.recorder.messages}) == 1  # one SMTP session


def test_unknown_recipient_550_is_rejected_and_the_next_mail_still_goes(smtp_server):
    peer = smtp_server()
    peer.recorder.refuse["alice.martin@corp.example"] = "550 5.1.1 <alice>: user unknown"
    channel = SmtpChannel(options(peer))
    with pytest.raises(Rejected) as info:
        channel.send(ask())
    assert info.value.code == "smtp-550"
    assert "user unknown" in info.value.detail
    peer.recorder.refuse.clear()
    channel.send(ask())
    channel.close()
    assert len(peer.recorder.messages) == 1


def test_mailbox_busy_450_is_transient(smtp_server):
    peer = smtp_server()
    peer.recorder.refuse["alice.martin@corp.example"] = "450 4.2.1 mailbox busy, try later"
    with pytest.raises(Transient, match="450"):
        SmtpChannel(options(peer)).send(ask())


def test_dead_server_is_transient():
    dead = SmtpOptions(host="127.0.0.1", port=free_port(), security="none", sender=SENDER)
    with pytest.raises(Transient) as info:
        SmtpChannel(dead).send(ask())
    assert info.value.code == "smtp-refused"


def test_silent_server_times_out_as_transient():
    # Accepts the connection and never greets: the client must give up, not hang.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    try:
        slow = SmtpOptions(
            host="127.0.0.1",
            port=listener.getsockname()[1],
            security="none",
            sender=SENDER,
            timeout=0.3,
        )
        with pytest.raises(Transient) as info:
            SmtpChannel(slow).send(ask())
        assert info.value.code in ("smtp-timeout", "smtp-disconnected")
    finally:
        thread.join(2)
        for conn in accepted:
            conn.close()
        listener.close()


def test_starttls_with_login_against_a_private_ca(smtp_server, caplog):
    peer = smtp_server(starttls=True, auth=True)
    caplog.set_level(logging.DEBUG)
    secure = options(
        peer,
        security="starttls",
        ca_file=str(peer.tls.ca_file),
        username=SMTP_USER,
        password=lambda: SMTP_PASSWORD,
    )
    with SmtpChannel(secure) as channel:
        channel.send(ask())
    [got] = peer.recorder.messages
    assert got.tls is True
    assert got.user == SMTP_USER.encode()
    assert SMTP_PASSWORD not in caplog.text


def test_implicit_tls(smtp_server):
    peer = smtp_server(implicit_tls=True)
    with SmtpChannel(options(peer, security="tls", ca_file=str(peer.tls.ca_file))) as channel:
        channel.send(ask())
    assert peer.recorder.messages[0].tls is True


def test_untrusted_certificate_stops_the_run(smtp_server):
    peer = smtp_server(starttls=True)
    # The system CAs do not know the throwaway CA: never fall back to clear text.
    with pytest.raises(StopRun) as info:
        SmtpChannel(options(peer, security="starttls")).send(ask())
    assert info.value.code == "smtp-tls"
    assert peer.recorder.messages == []


def test_server_without_starttls_is_refused_when_tls_is_required(smtp_server):
    peer = smtp_server()
    with pytest.raises(StopRun, match="does not offer STARTTLS"):
        SmtpChannel(options(peer, security="starttls")).send(ask())
    assert peer.recorder.messages == []


def test_wrong_password_stops_the_run_and_is_never_shown(smtp_server, caplog):
    peer = smtp_server(starttls=True, auth=True)
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-password-value-xyz"
    bad = options(
        peer,
        security="starttls",
        ca_file=str(peer.tls.ca_file),
        username=SMTP_USER,
        password=lambda: wrong,
    )
    with pytest.raises(StopRun) as info:
        SmtpChannel(bad).send(ask())
    assert info.value.code == "smtp-auth"
    assert wrong not in str(info.value) and wrong not in caplog.text
    assert peer.recorder.messages == []
