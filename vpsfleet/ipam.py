"""IPv4 allocation: the fleet file is the allocation table and git history its log (M3).

An address is free when it is a usable host address of a pool, not the pool's gateway or a
reserved address, not inside a management network (M7), not held by any machine in the file
(terminated guests keep theirs until it is released), and not in quarantine. Allocation takes
the lowest free address of the guest's datacenter, so adding or removing a guest never
renumbers another.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from pathlib import Path

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from vpsfleet.fleet import Fleet
from vpsfleet.fleet_edit import delete_keys, find_item, insert_after, load_document, write_checked
from vpsfleet.loader import FleetInvalid, check_fleet
from vpsfleet.schema import GuestState, Pool


class AllocationError(Exception):
    """The request cannot be done; the fleet file is left as it was."""


def held_addresses(fleet: Fleet) -> set[ipaddress.IPv4Address]:
    held: set[ipaddress.IPv4Address] = set()
    for host in fleet.hosts:
        if host.ipv4 is not None:
            held.add(host.ipv4)
    for guest in fleet.guests:
        if guest.ipv4 is not None:
            held.add(guest.ipv4)
    for server in fleet.dedicated_servers:
        if server.ipv4 is not None:
            held.add(server.ipv4)
    held.update(store.address for store in fleet.backup_stores)
    held.update(monitor.address for monitor in fleet.monitors)
    return held


def usable(fleet: Fleet, pool: Pool) -> Iterator[ipaddress.IPv4Address]:
    """Host addresses of the pool, lowest first, minus its gateway, its reserved addresses and
    the provider's management networks (no machine may sit there, M7)."""
    excluded = {pool.gateway, *pool.reserved}
    management = [n for n in fleet.provider.management_networks if n.overlaps(pool.network)]
    for address in pool.network.hosts():
        if address not in excluded and not any(address in n for n in management):
            yield address


def free_addresses(
    fleet: Fleet, datacenter: str, today: dt.date
) -> Iterator[tuple[Pool, ipaddress.IPv4Address]]:
    dc = fleet.datacenter(datacenter)
    if dc is None:
        known = ", ".join(d.code for d in fleet.datacenters)
        raise AllocationError(f"unknown datacenter {datacenter!r} (known: {known})")
    taken = held_addresses(fleet) | fleet.quarantined(today)
    for pool in dc.pools:
        for address in usable(fleet, pool):
            if address not in taken:
                yield pool, address


def lowest_free(fleet: Fleet, datacenter: str, today: dt.date) -> ipaddress.IPv4Address:
    for _pool, address in free_addresses(fleet, datacenter, today):
        return address
    raise AllocationError(f"no free IPv4 address left in the pools of datacenter {datacenter}")


def allocate(path: Path, name: str, *, today: dt.date | None = None) -> ipaddress.IPv4Address:
    """Gives guest (or dedicated server) `name` the lowest free address of its datacenter and
    writes it into the fleet file. Refuses, changing nothing, if the fleet has any other
    problem or the machine already has an address (a fixed IPv4 never changes, M3)."""
    today = today or dt.date.today()
    fleet, problems = check_fleet(path, today=today, unallocated_ok=frozenset({name}))
    if problems or fleet is None:
        raise FleetInvalid(path, problems)
    guest = fleet.guest(name)
    server = next((s for s in fleet.dedicated_servers if s.name == name), None)
    if guest is not None:
        if guest.state is GuestState.TERMINATED:
            raise AllocationError(f"guest {name} is terminated: it gets no address")
        current, datacenter = guest.ipv4, fleet.guest_datacenter(guest)
    elif server is not None:
        current, datacenter = server.ipv4, server.datacenter
    else:
        raise AllocationError(f"no guest or dedicated server named {name!r}")
    if current is not None:
        raise AllocationError(
            f"{name} already has {current}: a fixed address never changes while the contract "
            "runs (M3)"
        )
    assert datacenter is not None  # the checks above passed: its host exists
    address = lowest_free(fleet, datacenter, today)

    doc = load_document(path)
    item = find_item(doc, ("guests", "dedicated_servers"), name)
    assert item is not None  # the fleet, read from the same file, has it
    # A guest's address follows its image, a dedicated server's its datacenter.
    insert_after(item, "image" if "image" in item else "datacenter", [("ipv4", str(address))])
    write_checked(path, doc, today)
    return address


def release(path: Path, name: str, *, today: dt.date | None = None) -> ipaddress.IPv4Address:
    """Takes the address of terminated guest `name` off it and puts it in quarantine from
    today. A live guest's address cannot be released (M3)."""
    today = today or dt.date.today()
    fleet, problems = check_fleet(path, today=today)
    if problems or fleet is None:
        raise FleetInvalid(path, problems)
    guest = fleet.guest(name)
    if guest is None:
        raise AllocationError(f"no guest named {name!r}")
    if guest.state is not GuestState.TERMINATED:
        raise AllocationError(
            f"guest {name} is {guest.state.value}: its address is fixed while the contract runs "
            "(M3); terminate it first (state: terminated, terminated_on: DATE)"
        )
    if guest.ipv4 is None:
        raise AllocationError(f"guest {name} holds no address")
    address = guest.ipv4

    doc = load_document(path)
    item = find_item(doc, ("guests",), name)
    assert item is not None
    delete_keys(item, "ipv4")
    entry = CommentedMap(
        [("ipv4", str(address)), ("released_on", today), ("guest", name)]
    )
    if doc.get("quarantine") is None:
        doc["quarantine"] = CommentedSeq()
        doc.yaml_set_comment_before_after_key(
            "quarantine", before="\nReleased addresses wait policy.ipv4_quarantine_days before reuse."
        )
    doc["quarantine"].append(entry)
    write_checked(path, doc, today)
    return address

