"""Security patching in the site (M14), on the managed guests of the lab fleet: read from each
guest's live apt configuration, only the security origin is upgraded automatically and nothing
reboots by itself; after the converge (lab.yml: the lab's apt repository, then site.yml, then the
night's upgrade now) the lab's security update is installed, the point-release one is not, and
the customer's notice, in their language, is in the lab's mail sink while the reboot waits."""

import email
import email.policy
import json
import os
from pathlib import Path

import pytest
import testinfra

from vpsfleet.loader import load_fleet

FLEET = load_fleet(Path(__file__).resolve().parents[3] / "inventories" / "lab" / "fleet.yml")
MANAGED = [
    g for g in FLEET.live_guests() if g.ipv4 is not None and FLEET.offer(g.offer).kind.value == "managed_vps"
]
# What role lab_apt_repo's archives hold by default: pigz rebuilt in the security archive (an
# update that asks for a reboot), zstd rebuilt in the point-release archive (label Debian).
SECURITY_UPDATE, POINT_RELEASE_UPDATE, SUFFIX = "pigz", "zstd", "+lab1"
SECURITY_ORIGIN = "origin=Debian,codename=${distro_codename}-security,label=Debian-Security"
MAILDIR = "/var/mail/sink"
# The containers' names are the fleet's; a prefix lets the same checks run on copies of them.
PREFIX = os.environ.get("VPSFLEET_SITE_CONTAINER_PREFIX", "")


def host(name: str):
    return testinfra.get_host(f"podman://{PREFIX}{name}")


def version(guest, package: str) -> str:
    return guest.check_output("dpkg-query -W -f '${Version}' %s", package)


def candidate(guest, package: str) -> str:
    policy = guest.check_output("apt-cache policy %s", package)
    return next(line.split()[1] for line in policy.splitlines() if line.strip().startswith("Candidate:"))


@pytest.mark.parametrize("guest", MANAGED, ids=[g.name for g in MANAGED])
def test_apt_upgrades_only_the_security_origin_and_never_reboots(guest):
    machine = host(guest.name)
    dump = machine.check_output("apt-config dump Unattended-Upgrade").splitlines()
    patterns = [line for line in dump if line.startswith("Unattended-Upgrade::Origins-Pattern:: ")]
    assert patterns == [f'Unattended-Upgrade::Origins-Pattern:: "{SECURITY_ORIGIN}";']
    assert not [line for line in dump if line.startswith("Unattended-Upgrade::Allowed-Origins:: ")]
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in dump
    # What unattended-upgrades itself makes of it, running codename substituted.
    dry = machine.run("unattended-upgrade --dry-run -d")
    assert dry.rc == 0, dry.stderr
    allowed = [line for line in (dry.stdout + dry.stderr).splitlines() if "Allowed origins are:" in line]
    assert allowed, dry.stdout + dry.stderr
    assert allowed[-1].split("Allowed origins are:", 1)[1].strip() == (
        "origin=Debian,codename=bookworm-security,label=Debian-Security"
    )
    # No reboot of its own: nothing schedules one.
    assert not machine.file("/etc/cron.d/unattended-upgrades-reboot").exists
    timers = machine.check_output("systemctl list-timers --all --no-legend")
    assert "reboot" not in timers


@pytest.mark.parametrize("guest", MANAGED, ids=[g.name for g in MANAGED])
def test_the_nightly_upgrade_timer_is_enabled_and_waiting(guest):
    machine = host(guest.name)
    timer = machine.service("apt-daily-upgrade.timer")
    assert timer.is_enabled
    assert timer.is_running
    assert machine.service("apt-daily.timer").is_enabled
    # The notice follows each nightly upgrade.
    post = machine.check_output("systemctl show apt-daily-upgrade.service -p ExecStartPost")
    assert "/usr/local/sbin/vpsfleet-patch-notice" in post


@pytest.mark.parametrize("guest", MANAGED, ids=[g.name for g in MANAGED])
def test_the_lab_security_update_is_installed_and_the_point_release_one_is_not(guest):
    machine = host(guest.name)
    sink = host("mailsink")
    # Both updates are rebuilds of packages of the image (the sink runs the same image).
    for package in (SECURITY_UPDATE, POINT_RELEASE_UPDATE):
        assert version(sink, package) + SUFFIX == candidate(machine, package)
    assert version(machine, SECURITY_UPDATE) == version(sink, SECURITY_UPDATE) + SUFFIX
    assert version(machine, POINT_RELEASE_UPDATE) == version(sink, POINT_RELEASE_UPDATE)
    log = machine.file("/var/log/unattended-upgrades/unattended-upgrades.log").content_string
    assert f"Packages that will be upgraded: {SECURITY_UPDATE}\n" in log
    assert "All upgrades installed" in log
    chosen = [line for line in log.splitlines() if "Packages that will be upgraded:" in line]
    assert not [line for line in chosen if POINT_RELEASE_UPDATE in line.split(":")[-1].split()]
    # Its apt reads the lab's archives, and no Debian mirror (the lab has no way out).
    sources = machine.check_output("apt-get indextargets --format '$(SITE)' | sort -u").split()
    assert sources
    assert all(":8080" in site for site in sources), sources


@pytest.mark.parametrize("guest", MANAGED, ids=[g.name for g in MANAGED])
def test_the_customer_notice_is_in_the_sink_before_any_reboot(guest):
    machine = host(guest.name)
    customer = FLEET.customer(guest.customer)
    state = json.loads(machine.file("/var/lib/vpsfleet/patching/notice.json").content_string)
    assert state["status"] == "sent"
    assert state["reboot"] is True
    assert any(line.startswith(f"{SECURITY_UPDATE} ") for line in state["updated"])
    # The reboot waits for its announced time: nothing rebooted, the gate says not yet.
    assert machine.file("/run/reboot-required").exists
    gate = machine.run("/usr/local/sbin/vpsfleet-patch-notice --reboot-allowed")
    assert gate.rc == 3, gate.stdout
    # The mail itself, found in the sink by its Message-ID.
    sink = host("mailsink")
    found = sink.run("grep -rlF -e %s %s/new %s/cur", state["message_id"], MAILDIR, MAILDIR)
    assert found.rc == 0, f"no notice {state['message_id']} in the sink"
    path = found.stdout.split()[0]
    mail = email.message_from_bytes(sink.file(path).content, policy=email.policy.default)
    assert mail["X-Vpsfleet-Notice"] == "reboot"
    assert mail["To"] == customer.email
    assert mail["Cc"] == FLEET.provider.operations_email
    assert mail["Content-Language"] == customer.language
    assert mail["X-Vpsfleet-Reboot-At"] == state["reboot_at"]
    assert SECURITY_UPDATE in mail.get_body().get_content()
