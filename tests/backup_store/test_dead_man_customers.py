"""The 04:00 dead-man check tells the customer of an unmanaged guest (M24, issue 12): after
hand-over the provider cannot reach that guest, so its customer gets, in the customer's language,
what happened and what to do; a managed guest's night is the provider's to redo (operations only).
The store's program as the role installs it, its mails through a sendmail that relays over SMTP
with STARTTLS (as postfix's null client does) to the lab's mail sink, on loopback."""

from __future__ import annotations

import email
import email.policy
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.backup_store.conftest import TODAY, day, home, make_sets, save
from tests.mail_sink.running import running_sink
from vpsfleet_agents.store.config import Refused, check_config

SENDMAIL = """\
#!{python}
# sendmail -t -oi: the message's recipients, relayed with STARTTLS to the sink (postfix's role).
import email, email.policy, re, smtplib, ssl, sys
raw = re.sub(rb"\\r?\\n", b"\\r\\n", sys.stdin.buffer.read())  # SMTP lines end in CRLF, as postfix sends them
message = email.message_from_bytes(raw, policy=email.policy.default)
recipients = [a for h in ("To", "Cc") for a in message.get_all(h, [])]
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", {port}, timeout=10) as smtp:
    smtp.starttls(context=context)
    smtp.sendmail("store@test.example.net", recipients, raw)
"""


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """The mail sink (role mail_sink's program), its port and Maildir."""
    with running_sink(tmp_path) as running:
        yield running


def mails(maildir: Path) -> list[EmailMessage]:
    found = []
    for path in sorted((maildir / "new").iterdir()):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


@pytest.fixture
def fleet(config: dict[str, Any], tmp_path: Path, sink: tuple[int, Path]) -> dict[str, Any]:
    """The store keeps g1 (managed, customer c1) and u1, u2 (unmanaged, customers c2 in English
    and c3 in French); none published tonight's set."""
    port, _ = sink
    sendmail = tmp_path / "sendmail-relay"
    sendmail.write_text(SENDMAIL.format(python=sys.executable, port=port))
    sendmail.chmod(0o755)
    config["sendmail"] = str(sendmail)
    config["guests"][0]["managed"] = True
    config["guests"] += [
        {"guest": "u1", "customer": "c2", "state": "active", "terminated_on": None, "retention_days": None,
         "identity": "u1@2026-02-01", "managed": False},
        {"guest": "u2", "customer": "c3", "state": "active", "terminated_on": None, "retention_days": None,
         "identity": "u2@2026-02-01", "managed": False},
    ]  # fmt: skip
    config["customers"] += [
        {"id": "c2", "identity": "c2@2025-06-01", "name": "Bravo Ltd", "email": "bravo@customer.example.org",
         "language": "en", "quota_bytes": 0, "guests": ["u1"]},
        {"id": "c3", "identity": "c3@2025-06-01", "name": "Charlie SARL",
         "email": "charlie@customer.example.org",
         "language": "fr", "quota_bytes": 0, "guests": ["u2"]},
    ]  # fmt: skip
    config.update(
        provider="vpsfleet test",
        support_email="support@test.example.net",
        customer_docs_url="https://docs.test.example.net/backups.{lang}.html",
    )
    make_sets(home(config, "c2", "u1"), [1, 2])  # u1 published until last night
    return config


def test_the_customer_of_an_unmanaged_guest_is_told_in_their_language(
    fleet: dict[str, Any], tmp_path: Path, sink: tuple[int, Path], program: Path
) -> None:
    _, maildir = sink
    run = subprocess.run(
        [str(program), "--config", save(fleet, tmp_path), "--today", TODAY.isoformat(), "dead-man"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr  # sets are missing
    by_to = {str(m["To"]): m for m in mails(maildir)}
    assert sorted(by_to) == [
        "bravo@customer.example.org", "charlie@customer.example.org", "ops@test.example.net"
    ]  # fmt: skip
    # English, for the customer whose language is English; the newest set named.
    bravo = by_to["bravo@customer.example.org"]
    assert bravo["Content-Language"] == "en"
    assert (
        str(bravo["Subject"]).strip()
        == f"[vpsfleet test] Backup of u1: no backup received for the night of {TODAY}"
    )
    assert bravo["Reply-To"] == "support@test.example.net"
    text = bravo.get_content()
    assert f"of {day(1)}, is untouched" in text
    assert "cat /var/lib/vpsfleet-backup/status.json" in text
    assert "systemctl start vpsfleet-backup.service" in text
    assert "https://docs.test.example.net/backups.en.html" in text
    # French for the other; no set at all yet.
    charlie = by_to["charlie@customer.example.org"]
    assert charlie["Content-Language"] == "fr"
    assert "Sauvegarde de u2" in str(charlie["Subject"])
    assert "Aucune sauvegarde de ce serveur" in charlie.get_content()
    assert "https://docs.test.example.net/backups.fr.html" in charlie.get_content()
    # The managed guest's customer is not mailed; operations get every guest, with who acts.
    ops = by_to["ops@test.example.net"].get_content()
    assert "g1" in ops and "managed: ours to fix" in ops
    assert "unmanaged: customer told at bravo@customer.example.org (en)" in ops
    assert "unmanaged: customer told at charlie@customer.example.org (fr)" in ops


def test_no_mail_to_customers_when_every_set_is_there(
    fleet: dict[str, Any], tmp_path: Path, sink: tuple[int, Path], program: Path
) -> None:
    _, maildir = sink
    for customer, guest in (("c1", "g1"), ("c2", "u1"), ("c3", "u2")):
        make_sets(home(fleet, customer, guest), [0])
    run = subprocess.run(
        [str(program), "--config", save(fleet, tmp_path), "--today", TODAY.isoformat(), "dead-man"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert mails(maildir) == []


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"email": "a@b.example\nBcc: x@y.example"}, "customers[1].email"),
        ({"language": "de"}, "customers[1].language"),
    ],
)
def test_what_reaches_a_customer_mail_is_checked(
    fleet: dict[str, Any], change: dict[str, Any], where: str
) -> None:
    fleet["customers"][1].update(change)
    with pytest.raises(Refused, match=where.replace("[", r"\[").replace("]", r"\]")):
        check_config(fleet)
