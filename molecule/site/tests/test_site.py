"""The site on the lab fleet, checked across hosts against what the fleet file says."""

import time
import uuid
from pathlib import Path

import pytest
import testinfra

from vpsfleet.backup_plan import plan_night
from vpsfleet.loader import load_fleet

FLEET = load_fleet(Path(__file__).resolve().parents[3] / "inventories" / "lab" / "fleet.yml")
GUESTS = [g for g in FLEET.live_guests() if g.ipv4 is not None]


def guest_host(name: str):
    return testinfra.get_host(f"podman://{name}")


@pytest.mark.parametrize("guest", GUESTS, ids=[g.name for g in GUESTS])
def test_access_follows_the_offer(guest):
    host = guest_host(guest.name)
    offer = FLEET.offer(guest.offer)
    customer = FLEET.customer(guest.customer)
    root_keys = host.file("/root/.ssh/authorized_keys").content_string
    assert host.check_output("hostname") == guest.name
    if offer.root == "provider":
        for operator in FLEET.provider.operators:
            assert host.user(operator.name).exists
            assert all(key in root_keys for key in operator.ssh_keys)
        assert host.user(customer.id).exists
        assert "sudo" not in host.user(customer.id).groups
        assert not any(key in root_keys for key in customer.ssh_keys)
    else:
        assert all(key in root_keys for key in customer.ssh_keys)
        for operator in FLEET.provider.operators:
            assert not host.user(operator.name).exists
            assert not any(key in root_keys for key in operator.ssh_keys)


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
            assert not guest_host(guest.name).file("/etc/nftables.d/vpsfleet-node-exporter.nft").exists


def test_every_guest_mails_through_the_relay():
    sink = guest_host("mailsink")
    tokens = {}
    for guest in GUESTS:
        tokens[guest.name] = uuid.uuid4().hex
        guest_host(guest.name).run(
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
