"""Allocation writes a fixed address into the fleet file and never moves another (M3)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from vpsfleet.ipam import AllocationError, allocate, free_addresses, release
from vpsfleet.loader import FleetInvalid, load_fleet

from .conftest import TODAY

NEW_GUEST = """  - name: alpha-new  # a guest ordered today
    created: 2026-11-23
    customer: c-alpha
    offer: managed
    plan: vps-s
    host: labhv1
    image: debian-12
"""


def add_guest(path: Path, block: str = NEW_GUEST) -> None:
    text = path.read_text()
    marker = "\nbackup_stores:"
    path.write_text(text.replace(marker, "\n" + block.rstrip("\n") + "\n" + marker, 1))


def test_allocate_takes_the_lowest_free_address_and_keeps_comments(lab_copy: Path) -> None:
    add_guest(lab_copy)
    before = lab_copy.read_text()
    address = allocate(lab_copy, "alpha-new", today=TODAY)
    # .1 gateway, .2-.3 reserved, .4 the dedicated server, .10-.13 the guests: .5 is the
    # lowest free one.
    assert address == ipaddress.IPv4Address("198.51.100.5")
    after = lab_copy.read_text()
    assert "  - name: alpha-new  # a guest ordered today\n" in after
    assert "    image: debian-12\n    ipv4: 198.51.100.5\n" in after
    # Only the new line was added: every comment and every other line is as it was.
    assert after.splitlines() == [*before.splitlines()[: after.splitlines().index(
        "    ipv4: 198.51.100.5")], "    ipv4: 198.51.100.5",
        *before.splitlines()[after.splitlines().index("    ipv4: 198.51.100.5"):]]
    fleet = load_fleet(lab_copy, today=TODAY)
    assert fleet.guest("alpha-new").ipv4 == address  # type: ignore[union-attr]


def test_allocate_never_renumbers_a_guest_that_has_an_address(lab_copy: Path) -> None:
    before = {g.name: g.ipv4 for g in load_fleet(lab_copy, today=TODAY).guests}
    add_guest(lab_copy)
    allocate(lab_copy, "alpha-new", today=TODAY)
    after = {g.name: g.ipv4 for g in load_fleet(lab_copy, today=TODAY).guests}
    assert {k: after[k] for k in before} == before
    with pytest.raises(AllocationError, match="never changes"):
        allocate(lab_copy, "alpha-web", today=TODAY)


def test_allocate_refuses_an_invalid_fleet_and_leaves_the_file_untouched(lab_copy: Path) -> None:
    add_guest(lab_copy)
    add_guest(lab_copy, NEW_GUEST.replace("alpha-new", "alpha-typo").replace("plan:", "plann:"))
    before = lab_copy.read_bytes()
    with pytest.raises(FleetInvalid) as err:
        allocate(lab_copy, "alpha-new", today=TODAY)
    assert any(p.location.endswith(".plann") for p in err.value.problems)
    assert lab_copy.read_bytes() == before


def test_allocate_skips_quarantined_addresses(lab_copy: Path) -> None:
    add_guest(lab_copy)
    with lab_copy.open("a") as handle:
        handle.write("\nquarantine:\n  - {ipv4: 198.51.100.5, released_on: 2026-11-01, guest: old}\n")
    assert allocate(lab_copy, "alpha-new", today=TODAY) == ipaddress.IPv4Address("198.51.100.6")


def test_a_released_address_becomes_free_again_after_its_quarantine(lab_copy: Path) -> None:
    with lab_copy.open("a") as handle:
        handle.write("\nquarantine:\n  - {ipv4: 198.51.100.5, released_on: 2026-01-01, guest: old}\n")
    add_guest(lab_copy)
    # The lab's quarantine is 30 days: from 2026-01-31 on, the address is free.
    assert allocate(lab_copy, "alpha-new", today=TODAY) == ipaddress.IPv4Address("198.51.100.5")


def test_release_refuses_a_live_guest(lab_copy: Path) -> None:
    with pytest.raises(AllocationError, match="fixed while the contract runs"):
        release(lab_copy, "bravo-dev", today=TODAY)


def test_release_quarantines_a_terminated_guests_address(lab_copy: Path) -> None:
    text = lab_copy.read_text().replace(
        "    ipv4: 198.51.100.13\n",
        "    ipv4: 198.51.100.13\n    state: terminated\n    terminated_on: 2026-11-20\n",
    )
    lab_copy.write_text(text)
    assert release(lab_copy, "bravo-dev", today=TODAY) == ipaddress.IPv4Address("198.51.100.13")
    fleet = load_fleet(lab_copy, today=TODAY)
    assert fleet.guest("bravo-dev").ipv4 is None  # type: ignore[union-attr]
    [entry] = fleet.quarantine
    assert (str(entry.ipv4), entry.released_on, entry.guest) == ("198.51.100.13", TODAY, "bravo-dev")
    free = [a for _p, a in free_addresses(fleet, "lab-a", TODAY)]
    assert ipaddress.IPv4Address("198.51.100.13") not in free
    assert "# The lab: the whole platform on one machine." in lab_copy.read_text()


def test_allocate_a_dedicated_server_in_its_datacenter(minimal_copy: Path) -> None:
    text = minimal_copy.read_text()
    text = text.replace(
        "backup_stores:",
        "dedicated_servers:\n  - {name: ds1, datacenter: dc-b, customer: c1, offer: dedi, "
        "paid_on: 2026-11-01}\nbackup_stores:",
    ).replace(
        "offers:\n",
        "offers:\n  - {name: dedi, kind: dedicated, root: customer, sla_percent: 99.9, "
        "backup: false}\n",
    )
    minimal_copy.write_text(text)
    # 203.0.113.1 is the gateway, .10 the store: the server gets .2 of its own datacenter.
    assert allocate(minimal_copy, "ds1", today=TODAY) == ipaddress.IPv4Address("203.0.113.2")


def test_free_lists_addresses_in_order_without_gateway_or_reserved(lab_copy: Path) -> None:
    fleet = load_fleet(lab_copy, today=TODAY)
    first = [str(a) for _p, a in free_addresses(fleet, "lab-a", TODAY)][:7]
    # .4 is the dedicated server's (M3: held like a guest's).
    assert first == ["198.51.100.5", "198.51.100.6", "198.51.100.7", "198.51.100.8",
                     "198.51.100.9", "198.51.100.14", "198.51.100.15"]
    with pytest.raises(AllocationError, match="unknown datacenter"):
        list(free_addresses(fleet, "nowhere", TODAY))


def test_allocation_fails_clearly_when_the_pool_is_full(minimal_copy: Path) -> None:
    text = minimal_copy.read_text().replace(
        "network: 198.51.100.0/24, gateway: 198.51.100.1, reserved: [198.51.100.2]",
        "network: 198.51.100.0/28, gateway: 198.51.100.1, reserved: [198.51.100.2]",
    ).replace("198.51.100.10}", "198.51.100.12}").replace("198.51.100.11}", "198.51.100.13}")
    for n in range(3, 15):
        if n in (5, 12, 13):
            continue
        text = text.replace(
            "backup_stores:",
            f"  - {{name: w{n}, created: 2026-02-01, customer: c1, offer: unmanaged, plan: s, host: hv1, "
            f"image: debian-12, ipv4: 198.51.100.{n}}}\nbackup_stores:",
        )
    text = text.replace("vcpu: 4,", "vcpu: 16,").replace("ram_mb: 8192,", "ram_mb: 65536,")
    text = text.replace("disk_gb: 100}", "disk_gb: 1000}")
    minimal_copy.write_text(text + "  - {name: last, created: 2026-02-01, customer: c1, "
                            "offer: unmanaged, plan: s, host: hv1, image: debian-12}\n")
    minimal_copy.write_text(minimal_copy.read_text().replace(
        "backup_stores:\n  - {name: store1, datacenter: dc-b, address: 203.0.113.10, "
        "serves: [dc-a]}\n  - {name: last",
        "  - {name: last").replace("guests:\n", "backup_stores:\n  - {name: store1, "
                                   "datacenter: dc-b, address: 203.0.113.10, serves: [dc-a]}\n"
                                   "guests:\n"))
    before = minimal_copy.read_bytes()
    with pytest.raises(AllocationError, match="no free IPv4 address left"):
        allocate(minimal_copy, "last", today=TODAY)
    assert minimal_copy.read_bytes() == before


def test_allocation_never_offers_a_management_address(lab_copy: Path) -> None:
    """M7: a suspended guest still reaches the management networks; no machine goes there."""
    # The dedicated server (.4) first moves out of the widened management network.
    lab_copy.write_text(lab_copy.read_text().replace("- 198.51.100.0/30", "- 198.51.100.0/29")
                        .replace("ipv4: 198.51.100.4\n", "ipv4: 198.51.100.14\n"))
    fleet = load_fleet(lab_copy, today=TODAY)
    first = [str(a) for _p, a in free_addresses(fleet, "lab-a", TODAY)][:3]
    assert first == ["198.51.100.8", "198.51.100.9", "198.51.100.15"]
    add_guest(lab_copy)
    assert allocate(lab_copy, "alpha-new", today=TODAY) == ipaddress.IPv4Address("198.51.100.8")
