"""The mail connector without a server: MIME building, error translation, safety refusals."""

from __future__ import annotations

import smtplib
import socket
import ssl

import pytest
from pydantic import ValidationError

from reclaim.campaigns.model import Recipient, Sender
from reclaim.campaigns.settings import CampaignSettings, is_loopback_host
from reclaim.config import SmtpSettings
from reclaim.connectors.email import SmtpChannel, SmtpOptions, build_email, translate
from reclaim.connectors.errors import Rejected, StopRun, Transient
from tests.unit.campaigns.factories import NOW, SENDER, ask

S = "mail.corp.example:587"


def test_build_email_headers_and_alternatives():
    message = ask()
    msg = build_email(message, sender=SENDER, now=NOW, reply_to="it-help@corp.example")
    assert msg["Subject"] == "Do you still need Microsoft Visio?"
    assert msg["From"] == "Contoso software team <licenses@corp.example>"
    assert msg["To"] == "Alice Martin <Alice.Martin@corp.example>"
    assert msg["Reply-To"] == "it-help@corp.example"
    assert msg["Message-ID"] == f"<{message.key}.reclaim@corp.example>"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Date"] == "Mon, 02 Mar 2026 09:00:00 +0000"
    assert msg.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]


@pytest.mark.parametrize("bad", ["not an address", "a@b@c", "x\n@corp.example", ""])
def test_unusable_recipient_address_is_rejected(bad):
    with pytest.raises(Rejected, match="not a usable mail address"):
        build_email(ask(recipient=Recipient(bad or " ", email=bad or " ")), sender=SENDER, now=NOW)


def test_unusable_sender_address_stops_the_run():
    with pytest.raises(StopRun, match="sender"):
        build_email(ask(), sender=Sender("licenses"), now=NOW)


def test_non_ascii_names_are_encoded():
    msg = build_email(ask(), sender=Sender("it@corp.example", "Équipe logiciels"), now=NOW)
    raw = msg.as_bytes()
    assert b"=?utf-8?" in raw
    assert "Équipe logiciels" in str(msg["From"])


@pytest.mark.parametrize(
    ("exc", "kind", "code"),
    [
        (
            smtplib.SMTPRecipientsRefused({"a@x": (550, b"5.1.1 unknown user")}),
            Rejected,
            "smtp-550",
        ),
        (
            smtplib.SMTPRecipientsRefused({"a@x": (450, b"4.2.1 mailbox busy")}),
            Transient,
            "smtp-450",
        ),
        (smtplib.SMTPDataError(554, b"5.7.1 message refused"), Rejected, "smtp-554"),
        (smtplib.SMTPDataError(451, b"4.3.0 try later"), Transient, "smtp-451"),
        (smtplib.SMTPSenderRefused(550, b"not allowed", "it@x"), StopRun, "smtp-550"),
        (smtplib.SMTPSenderRefused(421, b"busy", "it@x"), Transient, "smtp-421"),
        (smtplib.SMTPAuthenticationError(535, b"5.7.8 bad credentials"), StopRun, "smtp-auth"),
        (smtplib.SMTPNotSupportedError("AUTH not offered"), StopRun, "smtp-unsupported"),
        (smtplib.SMTPServerDisconnected("gone"), Transient, "smtp-disconnected"),
        (ConnectionRefusedError(111, "refused"), Transient, "smtp-refused"),
        (TimeoutError("timed out"), Transient, "smtp-timeout"),
        (socket.gaierror(-2, "Name or service not known"), Transient, "smtp-dns"),
        (OSError(101, "Network is unreachable"), Transient, "smtp-network"),
        (ssl.SSLCertVerificationError(1, "bad cert"), StopRun, "smtp-tls"),
    ],
)
def test_translate_while_sending(exc, kind, code):
    err = translate(exc, server=S)
    assert type(err) is kind
    assert err.code == code
    assert err.detail.startswith(S)


def test_a_5xx_while_connecting_refuses_us_not_the_person():
    err = translate(smtplib.SMTPHeloError(501, b"bad HELO"), server=S, phase="connect")
    assert isinstance(err, StopRun)
    err = translate(smtplib.SMTPHeloError(501, b"bad HELO"), server=S, phase="send")
    assert isinstance(err, Rejected)
    err = translate(smtplib.SMTPConnectError(554, b"no service"), server=S, phase="connect")
    assert isinstance(err, StopRun)
    err = translate(smtplib.SMTPConnectError(421, b"too busy"), server=S, phase="connect")
    assert isinstance(err, Transient)


def test_translate_refuses_what_is_not_an_smtp_failure():
    with pytest.raises(TypeError):
        translate(KeyError("bug"), server=S)


def test_password_is_never_sent_in_clear_to_a_remote_host():
    calls = []

    def password() -> str:
        calls.append(1)
        return "s3cret-value"

    options = SmtpOptions(
        host="mail.corp.example",
        port=25,
        security="none",
        username="svc",
        password=password,
        sender=SENDER,
    )
    with pytest.raises(StopRun, match="without TLS") as info:
        SmtpChannel(options).send(ask())
    assert calls == []  # the password was not even read
    assert "s3cret" not in str(info.value)
    assert "s3cret" not in repr(options)


def test_options_from_smtp_settings(monkeypatch):
    monkeypatch.setenv("RECLAIM_TEST_SMTP_PW", "pw-value")
    smtp = SmtpSettings.model_validate(
        {
            "host": "mail.corp.example",
            "security": "tls",
            "port": 465,
            "username": "svc",
            "password": "env:RECLAIM_TEST_SMTP_PW",
            "sender": "Contoso IT <it@corp.example>",
        }
    )
    options = SmtpOptions.from_settings(smtp, rate_per_second=5)
    assert options.sender == Sender("it@corp.example", "Contoso IT")
    assert (options.host, options.port, options.security) == ("mail.corp.example", 465, "tls")
    assert options.password is not None and options.password() == "pw-value"
    assert "pw-value" not in repr(options)


def test_loopback_detection():
    assert is_loopback_host("127.0.0.1") and is_loopback_host("localhost")
    assert is_loopback_host("[::1]")
    assert not is_loopback_host("mail.corp.example") and not is_loopback_host(None)


def test_campaign_settings_refuse_plain_http_links():
    ok = CampaignSettings.model_validate(
        {"base_url": "https://reclaim.corp.example/", "token_keys": ["env:K"]}
    )
    assert ok.base_url == "https://reclaim.corp.example"
    assert CampaignSettings.model_validate(
        {"base_url": "http://127.0.0.1:8080", "token_keys": ["env:K"]}
    )
    with pytest.raises(ValidationError, match="https"):
        CampaignSettings.model_validate(
            {"base_url": "http://reclaim.corp.example", "token_keys": ["env:K"]}
        )
    with pytest.raises(ValidationError, match="secret reference"):
        CampaignSettings.model_validate(
            {"base_url": "https://reclaim.corp.example", "token_keys": ["plain-key"]}
        )
