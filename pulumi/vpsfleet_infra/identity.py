"""Names and addresses a guest keeps for life, derived from its name alone.

libvirt names are fixed by us (so replacements delete before they create); the MAC and the host
side interface name must not change when anything else about the guest does, or the guest's
network configuration and the host's accounting would follow a moving target.
"""

from __future__ import annotations

import hashlib

from vpsfleet.filters import filter_name

__all__ = ["filter_name", "interface_name", "mac_address", "root_volume_name", "seed_disk_name"]

IFNAME_MAX = 15  # Linux IFNAMSIZ - 1


def _digest(guest: str) -> bytes:
    return hashlib.sha256(f"vpsfleet-guest:{guest}".encode()).digest()


def mac_address(guest: str) -> str:
    """A locally administered unicast MAC (first octet 02): 40 bits from the name's hash, so two
    guests of a 2,000-guest fleet collide with odds below one in a hundred thousand; the program
    still refuses a collision."""
    tail = _digest(guest)[:5]
    return ":".join(f"{byte:02x}" for byte in (0x02, *tail))


def interface_name(guest: str) -> str:
    """The host-side tap name: `vf-` and 12 hex digits (15 characters, the kernel's limit).
    libvirt reserves the `vnet` and `macvtap` prefixes for names it makes up itself."""
    name = "vf-" + _digest(guest)[5:11].hex()
    assert len(name) <= IFNAME_MAX
    return name


def root_volume_name(guest: str) -> str:
    return f"{guest}-root.qcow2"


def seed_disk_name(guest: str) -> str:
    return f"{guest}-seed.iso"
