"""playbooks/security-notice.yml (M15) on a systemd guest whose apt reads the test repositories
from its own disk: the customer is told which security updates of the applications the
provider maintains are pending, and by when (M7); an unchanged list is not sent twice."""

from __future__ import annotations

import base64
import email
import email.policy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.patching.apt_repo import build_apt_repo
from tests.patching.guests import Guest, podman, run_playbook

pytestmark = [pytest.mark.molecule, pytest.mark.slow]

HOST_VARS = {
    "vpsfleet_customer": {
        "id": "c-alpha",
        "name": "Alpha SARL",
        "email": "alpha@customer.example.org",
        "language": "fr",
    },
    "vpsfleet_provider": {"name": "vpsfleet test", "operations_email": "ops@test.example.net"},
}


@pytest.fixture(scope="module")
def guest(make_guests: Any, tmp_path_factory: pytest.TempPathFactory) -> Guest:
    made: dict[str, Guest] = make_guests({"patching-secnotice": "no"})
    g = made["patching-secnotice"]
    repo = tmp_path_factory.mktemp("repo") / "apt"
    build_apt_repo(repo)
    podman("cp", str(repo), f"{g.name}:/srv/apt")
    g.sh(
        "rm -f /etc/apt/sources.list.d/* /etc/apt/sources.list\n"
        "echo 'deb [trusted=yes] file:/srv/apt/security bookworm-security main' >"
        " /etc/apt/sources.list.d/test.list\n"
        "echo 'deb [trusted=yes] file:/srv/apt/main bookworm main' >> /etc/apt/sources.list.d/test.list\n"
        "dpkg -i /srv/apt/base/pool/vpsfleet-{sec,regular}-demo_1.0_all.deb\n"
        "mkdir -p /var/tmp/outbox\n"
        "printf '#!/bin/sh\\ncat > /var/tmp/outbox/$(date +%%s%%N)\\n' > /usr/local/bin/fake-sendmail\n"
        "chmod 755 /usr/local/bin/fake-sendmail"
    )
    return g


def outbox(guest: Guest) -> list[Any]:
    names = guest.sh("ls -1 /var/tmp/outbox").split()
    return [  # as bytes: the mail is 8-bit UTF-8
        email.message_from_bytes(
            base64.b64decode(guest.sh(f"base64 -w0 /var/tmp/outbox/{n}")), policy=email.policy.default
        )
        for n in names
    ]


def notice(guest: Guest, tmp_path: Path, **extra: Any) -> Any:
    return run_playbook(
        tmp_path,
        "security-notice.yml",
        [guest.name],
        {guest.name: HOST_VARS},
        patching_security_notice_sendmail="/usr/local/bin/fake-sendmail",
        **extra,
    )


def test_pending_security_updates_are_announced_with_the_cut_off_date(guest: Guest, tmp_path: Path) -> None:
    run = notice(guest, tmp_path)
    assert run.rc == 0, run.output
    [mail] = outbox(guest)
    assert mail["To"] == "alpha@customer.example.org"
    assert mail["Cc"] == "ops@test.example.net"
    assert mail["Content-Language"] == "fr"
    body = mail.get_body().get_content()
    assert "vpsfleet-sec-demo 1.0 -> 1.1 (Debian-Security, bookworm-security)" in body
    assert "vpsfleet-regular-demo" not in body  # not a security update
    assert "vpsfleet-sec-reboot-demo" not in body  # not installed
    deadline = mail["X-Vpsfleet-Deadline"]
    assert f"avant le {deadline}" in mail["Subject"]
    assert "coupé\ndu réseau" in body
    state = json.loads(guest.sh("cat /var/lib/vpsfleet/patching/security-notice.json"))
    assert [p["name"] for p in state["pending"]] == ["vpsfleet-sec-demo"]


def test_unchanged_list_is_not_sent_again(guest: Guest, tmp_path: Path) -> None:
    assert notice(guest, tmp_path / "first").rc == 0
    before = len(outbox(guest))
    assert before >= 1
    run = notice(guest, tmp_path / "again")
    assert run.rc == 0, run.output
    assert len(outbox(guest)) == before
