"""The lab's mail sink (role mail_sink), built from vpsfleet_agents.mail_sink and run as the role
runs it, on loopback: it refuses mail before STARTTLS, and keeps a mail sent after it in its
Maildir, one file per mail under new/."""

from __future__ import annotations

import email
import email.policy
import smtplib
import ssl
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.mail_sink.running import running_sink


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """The mail sink (role mail_sink's program), its port and Maildir."""
    with running_sink(tmp_path) as running:
        yield running


def client_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the sink's certificate is self-signed
    return context


def message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "ops@test.example.net"
    msg["To"] = "alpha@customer.example.org"
    msg["Subject"] = "redémarrage planifié"
    msg.set_content("Bonjour,\n", charset="utf-8", cte="8bit")
    return msg


def test_mail_before_starttls_is_refused(sink: tuple[int, Path]) -> None:
    port, maildir = sink
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls")
        code, _ = smtp.mail("ops@test.example.net")
        assert code == 530
    assert list((maildir / "new").iterdir()) == []


def test_mail_after_starttls_lands_in_the_maildir(sink: tuple[int, Path]) -> None:
    port, maildir = sink
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.starttls(context=client_tls())
        refused = smtp.send_message(
            message(), to_addrs=["alpha@customer.example.org", "ops@test.example.net"]
        )
    assert refused == {}
    deadline = time.monotonic() + 10
    while not (files := list((maildir / "new").iterdir())) and time.monotonic() < deadline:
        time.sleep(0.1)
    [kept] = files
    mail = email.message_from_bytes(kept.read_bytes(), policy=email.policy.default)
    assert mail["To"] == "alpha@customer.example.org"
    assert mail["Subject"] == "redémarrage planifié"
    assert mail["X-RcptTo"] == "alpha@customer.example.org, ops@test.example.net"
