"""Role patching, verified on what the guest does: a real unattended upgrade (the nightly
apt-daily-upgrade.service, not a dry run) installs the security update and not the point-release
one, and the update that needs a reboot makes the customer's notice arrive first (M14)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import os
import time
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import testinfra

testinfra_hosts = ["patching-guest"]

CUSTOMER = "alpha@customer.example.org"
OPERATIONS = "ops@test.example.net"
MAILDIR = "/var/mail/sink/new"


def sink() -> Any:
    return testinfra.get_host(
        "ansible://patching-sink", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"]
    )


def sink_mails() -> list[EmailMessage]:
    box = sink()
    names = box.run(f"ls -1 {MAILDIR}").stdout.split()
    mails = []
    for name in names:
        raw = box.file(f"{MAILDIR}/{name}").content
        mails.append(email.message_from_bytes(raw, policy=email.policy.default))
    return mails  # type: ignore[return-value]


def reboot_notices() -> list[EmailMessage]:
    return [m for m in sink_mails() if m["X-Vpsfleet-Notice"] == "reboot"]


def pid1_started(host: Any) -> str:
    return host.check_output("ps -o lstart= -p 1")


@pytest.fixture(scope="module")
def upgraded(host: Any) -> dict[str, Any]:
    """Runs the nightly upgrade unit once, as its timer would, and waits for the notice."""
    before = pid1_started(host)
    run = host.run("systemctl start apt-daily-upgrade.service")
    assert run.rc == 0, run.stderr
    deadline = time.monotonic() + 90
    while not reboot_notices() and time.monotonic() < deadline:
        time.sleep(2)  # postfix relays to the sink over STARTTLS
    return {"pid1_before": before}


def version(host: Any, package: str) -> str:
    return host.check_output(f"dpkg-query -W -f '${{Version}}' {package}")


def test_security_update_installed_but_not_the_point_release(host: Any, upgraded: Any) -> None:
    assert version(host, "vpsfleet-sec-demo") == "1.1"
    assert version(host, "vpsfleet-sec-reboot-demo") == "1.1"
    assert version(host, "vpsfleet-regular-demo") == "1.0"
    # 1.1 was there to take, from an archive Debian's own 50unattended-upgrades allows.
    policy = host.check_output("apt-cache policy vpsfleet-regular-demo")
    assert "Candidate: 1.1" in policy
    log = host.file("/var/log/unattended-upgrades/unattended-upgrades.log").content_string
    assert "vpsfleet-sec-demo" in log
    assert "vpsfleet-regular-demo" not in log


def test_apt_allows_only_the_security_origin(host: Any) -> None:
    dump = host.check_output("apt-config dump Unattended-Upgrade").splitlines()
    origins = [line for line in dump if line.startswith("Unattended-Upgrade::Origins-Pattern:: ")]
    assert origins == [
        "Unattended-Upgrade::Origins-Pattern:: "
        '"origin=Debian,codename=${distro_codename}-security,label=Debian-Security";'
    ]
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in dump
    # Debian's own file is left as it is (ucf manages it), point releases and all.
    debian = host.file("/etc/apt/apt.conf.d/50unattended-upgrades").content_string
    assert '"origin=Debian,codename=${distro_codename},label=Debian";' in debian


def test_conffile_prompts_cannot_stall(host: Any) -> None:
    dump = host.check_output("apt-config dump DPkg::Options").splitlines()
    assert [line for line in dump if line.startswith("DPkg::Options:: ")] == [
        'DPkg::Options:: "--force-confdef";',
        'DPkg::Options:: "--force-confold";',
    ]


def test_daily_upgrade_runs_after_the_backup_window(host: Any) -> None:
    timer = host.check_output("systemctl show apt-daily-upgrade.timer -p TimersCalendar")
    assert "04:15:00" in timer
    assert host.check_output("systemctl show apt-daily-upgrade.timer -p Persistent") == ("Persistent=no")
    assert host.service("apt-daily-upgrade.timer").is_enabled


def test_customer_notice_in_french_before_the_reboot(host: Any, upgraded: Any) -> None:
    notices = reboot_notices()
    assert len(notices) == 1
    mail = notices[0]
    assert mail["To"] == CUSTOMER
    assert mail["Cc"] == OPERATIONS
    assert set(mail["X-RcptTo"].split(", ")) == {CUSTOMER, OPERATIONS}
    assert mail["Content-Language"] == "fr"
    body = mail.get_body().get_content()
    assert "redémarrage" in mail["Subject"]
    assert "vpsfleet-sec-reboot-demo" in body
    assert "vpsfleet-sec-demo 1.0 -> 1.1" in body
    assert "vpsfleet-regular-demo" not in body  # installed, never updated
    # In the maintenance window (05:30, local time), at least 24 h after the mail was sent.
    reboot_at = dt.datetime.fromisoformat(mail["X-Vpsfleet-Reboot-At"])
    sent = parsedate_to_datetime(mail["Date"])
    assert reboot_at.strftime("%H:%M") == "05:30"
    assert dt.timedelta(hours=24) <= reboot_at - sent < dt.timedelta(hours=48)
    text = " ".join(body.split())
    assert f"à 05:30 (Europe/Paris) ({reboot_at.isoformat(timespec='minutes')})" in text
    state = json.loads(host.file("/var/lib/vpsfleet/patching/notice.json").content_string)
    assert state["status"] == "sent"
    assert state["reboot_at"] == mail["X-Vpsfleet-Reboot-At"]


def test_nothing_rebooted_and_the_reboot_waits_for_its_time(host: Any, upgraded: Any) -> None:
    assert pid1_started(host) == upgraded["pid1_before"]
    assert host.file("/run/reboot-required").exists
    gate = host.run("/usr/local/sbin/vpsfleet-patch-notice --reboot-allowed")
    assert gate.rc == 3
    assert "not before" in json.loads(gate.stdout)["reason"]


def test_a_second_run_sends_no_second_notice(host: Any, upgraded: Any) -> None:
    again = json.loads(host.check_output("/usr/local/sbin/vpsfleet-patch-notice"))
    assert again["state"] == "unchanged"
    assert again["sent"] is False
    time.sleep(3)
    assert len(reboot_notices()) == 1
