"""The site on the lab fleet, checked across hosts against what the fleet file says."""

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import testinfra

from vpsfleet.backup_plan import plan_night
from vpsfleet.loader import load_fleet

FLEET = load_fleet(Path(__file__).resolve().parents[3] / "inventories" / "lab" / "fleet.yml")
GUESTS = [g for g in FLEET.live_guests() if g.ipv4 is not None]
KEYS = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "keys"
# The customer's alone after the hand-over: production has no way in but the customer's keys.
HANDED_OVER = {g.name for g in GUESTS if FLEET.offer(g.offer).root == "customer"} | {
    s.name for s in FLEET.dedicated_servers if s.delivered_on is not None
}


def guest_host(name: str):
    """A machine the provider administers, straight through podman for speed (the provider
    reaches it over SSH anyway). Refused for a handed-over machine: see customer_host."""
    if name in HANDED_OVER:
        raise AssertionError(f"{name} is handed over: the provider has no way in (M13)")
    return testinfra.get_host(f"podman://{name}")


def address(name: str) -> str:
    out = subprocess.run(["podman", "container", "inspect", name], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)[0]["NetworkSettings"]["IPAddress"]


def ssh_as_root(name: str, key: str) -> subprocess.CompletedProcess[str]:
    """A fresh SSH login as root with one of the scenario's keys (no agent, no other key)."""
    return subprocess.run(
        ["ssh", "-i", str(KEYS / key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "ControlPath=none", "-o", "ConnectTimeout=10", f"root@{address(name)}", "true"],
        capture_output=True, text=True, check=False,
    )


def customer_host(name: str):
    """A handed-over machine, the way its customer reaches it: SSH with the customer's key."""
    return testinfra.get_host(
        f"ssh://root@{address(name)}",
        ssh_identity_file=str(KEYS / "customer"),
        ssh_extra_args="-o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
    )


def host_of(guest):
    return customer_host(guest.name) if guest.name in HANDED_OVER else guest_host(guest.name)


@pytest.mark.parametrize("guest", GUESTS, ids=[g.name for g in GUESTS])
def test_access_follows_the_offer(guest):
    host = host_of(guest)
    offer = FLEET.offer(guest.offer)
    customer = FLEET.customer(guest.customer)
    root_keys = host.file("/root/.ssh/authorized_keys").content_string.split("\n")
    root_keys = sorted(line for line in root_keys if line.strip())
    keys = {who: (KEYS / f"{who}.pub").read_text().strip() for who in ("ops", "handover", "customer")}
    assert host.check_output("hostname") == guest.name
    if offer.root == "provider":
        for operator in FLEET.provider.operators:
            assert host.user(operator.name).exists
        assert root_keys == [keys["ops"]]
        assert host.user(customer.id).exists
        assert "sudo" not in host.user(customer.id).groups
    else:
        # The customer's keys alone: the hand-over key cloud-init gave is gone (M13).
        assert root_keys == [keys["customer"]]
        for operator in FLEET.provider.operators:
            assert not host.user(operator.name).exists
        assert not host.file("/etc/sudoers.d/vpsfleet-operators").exists


@pytest.mark.parametrize("name", sorted(HANDED_OVER))
def test_no_provider_key_opens_a_handed_over_machine(name):
    for key in ("ops", "handover"):
        refused = ssh_as_root(name, key)
        assert refused.returncode == 255 and "Permission denied" in refused.stderr, (key, refused)
    # ... while the customer's key does: the machine is up, the refusal is about the keys.
    assert ssh_as_root(name, "customer").returncode == 0


def test_the_dedicated_server_is_the_providers_until_its_delivery():
    pending = [s for s in FLEET.dedicated_servers if s.ipv4 is not None and s.delivered_on is None]
    assert pending, "the lab fleet has a dedicated server awaiting delivery"
    for server in pending:
        host = guest_host(server.name)
        root_keys = host.file("/root/.ssh/authorized_keys").content_string
        assert (KEYS / "ops.pub").read_text().strip() in root_keys
        assert (KEYS / "customer.pub").read_text().strip() not in root_keys
        # the base role ran, connection logs kept a year included (M17)
        assert host.file("/etc/ssh/sshd_config.d/00-vpsfleet.conf").exists
        assert host.file("/etc/systemd/journald.conf.d/60-vpsfleet-retention.conf").exists
        assert ssh_as_root(server.name, "ops").returncode == 0


def test_a_delivered_dedicated_server_is_configured_then_the_customers_alone():
    """M12, M13: installed with the operators' keys, configured by the hand-over (the base role's
    SSH hardening), then root is the customer's keys alone. Its logs are the customer's: the
    provider's year-long retention (M17) is for the machines it administers."""
    delivered = [s for s in FLEET.dedicated_servers if s.ipv4 is not None and s.delivered_on is not None]
    assert delivered, "the lab fleet has a delivered dedicated server"
    customer_key = (KEYS / "customer.pub").read_text().strip()
    for server in delivered:
        host = customer_host(server.name)
        assert host.check_output("hostname") == server.name
        root_keys = [line for line in host.file("/root/.ssh/authorized_keys").content_string.splitlines()
                     if line.strip()]
        assert root_keys == [customer_key]
        for operator in FLEET.provider.operators:
            assert not host.user(operator.name).exists
        assert not host.file("/etc/sudoers.d/vpsfleet-operators").exists
        assert host.file("/etc/ssh/sshd_config.d/00-vpsfleet.conf").exists
        # No provider agent: the offer has no backup service and the provider does not monitor
        # inside a customer's machine (the monitor PINGs it from outside, M26). The image's own
        # node exporter may run; role monitoring_agent's firewall for the monitor is not there.
        assert not host.file("/usr/local/sbin/vpsfleet-backup").exists
        assert not host.file("/etc/nftables.d/vpsfleet-node-exporter.nft").exists


def test_managed_guests_export_metrics_to_the_monitor_only():
    managed = [g for g in GUESTS if FLEET.offer(g.offer).root == "provider"]
    monitors = {str(m.address) for m in FLEET.monitors}
    first, second = managed[0], managed[1]
    rules = guest_host(first.name).check_output("nft list table inet vpsfleet_node_exporter")
    assert all(address in rules for address in monitors)
    target = guest_host(first.name).interface("eth0").addresses[0]
    # Another guest of the fleet is not a monitor: it cannot scrape.
    assert guest_host(second.name).run("curl -sf --max-time 3 http://%s:9100/metrics", target).rc != 0
    assert "node_cpu_seconds_total" in guest_host(first.name).check_output(
        "curl -sf http://127.0.0.1:9100/metrics"
    )


def test_unmanaged_guests_run_no_provider_agent():
    for guest in GUESTS:
        if FLEET.offer(guest.offer).root == "customer":
            assert not customer_host(guest.name).file("/etc/nftables.d/vpsfleet-node-exporter.nft").exists


def test_every_guest_mails_through_the_relay():
    sink = guest_host("mailsink")
    tokens = {}
    for guest in GUESTS:
        tokens[guest.name] = uuid.uuid4().hex
        host_of(guest).run(
            "printf 'Subject: site %s\\n\\nfrom %s\\n' | /usr/sbin/sendmail %s",
            tokens[guest.name],
            guest.name,
            FLEET.provider.operations_email,
        )
    missing = set(tokens)
    for _ in range(60):
        received = sink.run("cat /var/mail/sink/new/* 2>/dev/null").stdout
        missing = {name for name, token in tokens.items() if token not in received}
        if not missing:
            break
        time.sleep(0.5)
    assert not missing, f"no mail from {sorted(missing)}"


def test_managed_guests_back_up_to_the_fleet_store_at_the_planned_time():
    night = plan_night(FLEET)
    starts = {slot.job.guest: night.start_time(slot) for p in night.stores for slot in p.slots}
    store = guest_host("labstore1")
    assert store.service("proftpd").is_running
    offers = {o.name: o.kind.value for o in FLEET.offers}
    managed = [g for g in GUESTS if offers.get(g.offer) == "managed_vps" and FLEET.backup_enabled(g)]
    assert managed
    for guest in managed:
        host = guest_host(guest.name)
        timer = host.file("/etc/systemd/system/vpsfleet-backup.timer").content_string
        assert f"OnCalendar=*-*-* {starts[guest.name]}:00" in timer
        assert host.service("vpsfleet-backup.timer").is_enabled
        # The store keeps a folder (and a write account) for the guest.
        assert store.file(f"/srv/vpsfleet-backup/{guest.customer}/{guest.name}").is_directory


def test_the_hand_over_left_the_backup_annex():
    """handover.yml configured the annex before the provider lost access (M18-M21): the store
    keeps the guest's folder, and the customer finds the agent's timer on. (Its first set is
    published by make lab, whose guests reach the store at the fleet's addresses.)"""
    night = plan_night(FLEET)
    starts = {slot.job.guest: night.start_time(slot) for p in night.stores for slot in p.slots}
    store = guest_host("labstore1")
    annexed = [g for g in GUESTS if g.name in HANDED_OVER and FLEET.backup_enabled(g)]
    assert annexed, "the lab fleet has an unmanaged guest with the backup annex"
    for guest in annexed:
        assert store.file(f"/srv/vpsfleet-backup/{guest.customer}/{guest.name}").is_directory
        host = customer_host(guest.name)
        assert host.service("vpsfleet-backup.timer").is_enabled
        timer = host.file("/etc/systemd/system/vpsfleet-backup.timer").content_string
        assert f"OnCalendar=*-*-* {starts[guest.name]}:00" in timer
