"""IPv4 allocation: the fleet file is the allocation table and git history its log (M3).

An address is free when it is a usable host address of a pool, not the pool's gateway or a
reserved address, not held by any machine in the file (terminated guests keep theirs until it
is released), and not in quarantine. Allocation takes the lowest free address of the guest's
datacenter, so adding or removing a guest never renumbers another.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import ipaddress
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from vpsfleet.fleet import Fleet
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


def quarantined_addresses(fleet: Fleet, today: dt.date) -> set[ipaddress.IPv4Address]:
    days = dt.timedelta(days=fleet.policy.ipv4_quarantine_days)
    return {q.ipv4 for q in fleet.quarantine if q.released_on + days > today}


def usable(pool: Pool) -> Iterator[ipaddress.IPv4Address]:
    """Host addresses of the pool, lowest first, minus its gateway and reserved addresses."""
    excluded = {pool.gateway, *pool.reserved}
    for address in pool.network.hosts():
        if address not in excluded:
            yield address


def free_addresses(
    fleet: Fleet, datacenter: str, today: dt.date
) -> Iterator[tuple[Pool, ipaddress.IPv4Address]]:
    dc = fleet.datacenter(datacenter)
    if dc is None:
        known = ", ".join(d.code for d in fleet.datacenters)
        raise AllocationError(f"unknown datacenter {datacenter!r} (known: {known})")
    taken = held_addresses(fleet) | quarantined_addresses(fleet, today)
    for pool in dc.pools:
        for address in usable(pool):
            if address not in taken:
                yield pool, address


def lowest_free(fleet: Fleet, datacenter: str, today: dt.date) -> ipaddress.IPv4Address:
    for _pool, address in free_addresses(fleet, datacenter, today):
        return address
    raise AllocationError(f"no free IPv4 address left in the pools of datacenter {datacenter}")


# --- editing the fleet file (round-trip: comments and layout are kept) ------------------------


def _round_trip() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _find_machine(doc: Any, name: str) -> tuple[str, CommentedMap]:
    for section in ("guests", "dedicated_servers"):
        for item in doc.get(section) or []:
            if isinstance(item, CommentedMap) and item.get("name") == name:
                return section, item
    raise AllocationError(f"no guest or dedicated server named {name!r}")


def _write_checked(path: Path, doc: Any, today: dt.date) -> None:
    """Validates the edited document and only then replaces the file, atomically."""
    buffer = io.StringIO()
    _round_trip().dump(doc, buffer)
    text = buffer.getvalue()
    _fleet, problems = check_fleet(path, today=today, text=text)
    if problems:
        raise FleetInvalid(path, problems)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".fleet-", suffix=".yml")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, path.stat().st_mode & 0o777)
    os.replace(tmp, path)


def _move_trailing_lines(item: CommentedMap, before: str, after: str) -> None:
    """ruamel keeps the blank lines that follow a mapping with its last key; a key appended
    after it must take them, or they would end up between the two keys."""
    comments = item.ca.items.get(before)
    if not comments or len(comments) < 3 or comments[2] is None:
        return
    token = comments[2]
    own, newline, rest = token.value.partition("\n")
    if not rest:
        return
    moved = copy.copy(token)
    moved.value = rest if own.strip() else "\n" + rest
    token.value = own + newline
    item.ca.items[after] = [None, None, moved, None]


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

    doc = _round_trip().load(path.read_text())
    _section, item = _find_machine(doc, name)
    keys = list(item.keys())
    position = keys.index("image") + 1 if "image" in keys else len(keys)
    if "datacenter" in keys and "image" not in keys:
        position = keys.index("datacenter") + 1
    item.insert(position, "ipv4", str(address))
    if position == len(keys) and keys:
        _move_trailing_lines(item, keys[-1], "ipv4")
    _write_checked(path, doc, today)
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

    doc = _round_trip().load(path.read_text())
    _section, item = _find_machine(doc, name)
    del item["ipv4"]
    entry = CommentedMap(
        [("ipv4", str(address)), ("released_on", today), ("guest", name)]
    )
    if doc.get("quarantine") is None:
        doc["quarantine"] = CommentedSeq()
        doc.yaml_set_comment_before_after_key(
            "quarantine", before="\nReleased addresses wait policy.ipv4_quarantine_days before reuse."
        )
    doc["quarantine"].append(entry)
    _write_checked(path, doc, today)
    return address

